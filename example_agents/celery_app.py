"""The Celery app of the examples, for ``ACP_EXECUTOR=celery`` (see docs/celery.md).

The web processes send runs through it and the worker (``celery -A example_agents.worker worker``)
takes them from it. Read from the environment when first asked for:

* ``ACP_CELERY_BROKER``: the broker URL; by default the Redis of ``ACP_STORE`` (its ``prefix`` left out);
* ``ACP_CELERY_QUEUE``: the queue of the runs (``acp``); give each deployment sharing a broker its own;
* ``ACP_CELERY_POOL`` (``threads``) and ``ACP_CELERY_CONCURRENCY`` (``8``): the worker's pool and how many
  runs it executes at once. ``-c`` on the command line wins; ``-P`` does too, but for ``-P prefork``,
  which Celery takes for its default and replaces with the configured pool: ``ACP_CELERY_POOL=prefork``;
* ``ACP_CELERY_SHUTDOWN_GRACE``: seconds a stopping worker lets its runs go on (``20``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from celery import Celery

from acp_adapters.celery import CeleryExecutor

__all__ = ["broker_url", "celery_app", "executor"]

_REDIS_SCHEMES = ("redis", "rediss", "unix")


def broker_url(environ: Mapping[str, str] = os.environ) -> str:
    """``ACP_CELERY_BROKER``, else the Redis URL of ``ACP_STORE`` without its key prefix. Raises
    ``ValueError`` when neither names a broker."""
    given = environ.get("ACP_CELERY_BROKER", "").strip()
    if given:
        return given
    store = environ.get("ACP_STORE", "").strip()
    parts = urlsplit(store)
    if parts.scheme not in _REDIS_SCHEMES:
        raise ValueError(
            "ACP_EXECUTOR=celery needs a broker: set ACP_CELERY_BROKER (redis://127.0.0.1:6379/0), "
            f"or ACP_STORE to a Redis URL (it is {store!r})"
        )
    query = [
        (name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if name != "prefix"
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


@functools.cache
def celery_app() -> Celery:
    """The examples' Celery app, configured from the environment (once per process)."""
    app = Celery("example_agents", broker=broker_url(), set_as_current=False)
    app.conf.update(
        task_default_queue=os.environ.get("ACP_CELERY_QUEUE", "acp"),
        worker_pool=os.environ.get("ACP_CELERY_POOL", "threads"),
        worker_concurrency=int(os.environ.get("ACP_CELERY_CONCURRENCY", "8")),
        # A run may take minutes: a worker takes one task at a time per free slot, not a batch ahead.
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


@functools.cache
def executor(name: str = "acp") -> CeleryExecutor:
    """The executor of the mount ``name`` (one per mount and process)."""
    grace = float(os.environ.get("ACP_CELERY_SHUTDOWN_GRACE", "20"))
    return CeleryExecutor(celery_app(), name=name, shutdown_grace=grace)
