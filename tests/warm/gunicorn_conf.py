"""The gunicorn configuration of the warm-up tests: the one line docs/deployment.md gives."""

from acp_adapters.workers import post_worker_init  # noqa: F401
