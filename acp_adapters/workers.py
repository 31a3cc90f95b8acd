"""How many worker processes the server runs, and the start-up warning when they would not share runs.

With the in-memory store each worker process keeps its own runs, so under a server that runs several
(``gunicorn -w 4``, ``uvicorn --workers 2``, ``WEB_CONCURRENCY=4``) a request about a run that lands on
another worker gets 404. Every adapter calls :func:`warn_if_store_not_shared` when it makes its service
(Starlette/FastAPI and Flask when the app is built, Django on the first request).
"""

from __future__ import annotations

import importlib
import logging
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .core.store import Store

__all__ = ["server_worker_count", "warn_if_store_not_shared"]

logger = logging.getLogger("acp_adapters")


def server_worker_count(
    environ: Mapping[str, str] = os.environ, argv: Sequence[str] | None = None
) -> int | None:
    """How many worker processes the server runs, as far as it tells; ``None`` when it does not.

    Read, in order: uWSGI's own count; gunicorn's ``-w``/``--workers`` (command line, then
    ``GUNICORN_CMD_ARGS``, parsed with gunicorn's parser) when gunicorn runs the app; uvicorn's
    ``--workers`` when uvicorn's command line runs it (its worker processes keep the command line;
    ``--reload`` runs one); ``WEB_CONCURRENCY``, the variable gunicorn, uvicorn and PaaS hosts use for
    it. A count set only in a gunicorn config file, or in ``uvicorn.run(..., workers=2)``, is not seen.
    ``argv`` is the whole command line, program first (default: ``sys.argv``).
    """
    args = list(sys.argv if argv is None else argv)
    uwsgi = sys.modules.get("uwsgi")  # importable only inside uWSGI
    if uwsgi is not None and isinstance(getattr(uwsgi, "numproc", None), int):
        return int(uwsgi.numproc)
    if environ.get("SERVER_SOFTWARE", "").startswith("gunicorn"):
        try:
            gunicorn_config: Any = importlib.import_module("gunicorn.config")  # (untyped)
        except ImportError:
            pass
        else:
            parser = gunicorn_config.Config().parser()
            for given in (args[1:], shlex.split(environ.get("GUNICORN_CMD_ARGS", ""))):
                workers = getattr(parser.parse_known_args(given)[0], "workers", None)
                if isinstance(workers, int):
                    return workers
    if _runs_uvicorn(args):
        if "--reload" in args:
            return 1  # uvicorn ignores --workers and WEB_CONCURRENCY with --reload
        workers = _option(args, "--workers")
        if workers is not None:
            return workers
    try:
        return int(environ["WEB_CONCURRENCY"])
    except (KeyError, ValueError):
        return None


def warn_if_store_not_shared(store: Store | None, environ: Mapping[str, str] = os.environ) -> bool:
    """Log a warning when several worker processes would each keep their own runs (an in-memory
    store under a multi-process server). Returns whether it warned."""
    workers = server_worker_count(environ)
    if (store is not None and store.shared) or workers is None or workers <= 1:
        return False
    logger.warning(
        "acp-adapters: the server runs %d worker processes but the ACP store is in memory: each worker "
        "sees only its own runs and sessions, so requests about a run that land on another worker get 404. "
        "Fix: a shared store, store=RedisStore.from_url('redis://127.0.0.1:6379/0') "
        "(from acp_adapters.stores.redis), or ACP_STORE=redis://127.0.0.1:6379/0 (Flask's app.config, "
        "the examples), or Django's database store; or one worker process with threads "
        "(gunicorn -w 1 -k gthread --threads 32, uvicorn without --workers).",
        workers,
    )
    return True


def _runs_uvicorn(argv: Sequence[str]) -> bool:
    """Whether the command line is uvicorn's (``uvicorn ...`` or ``python -m uvicorn ...``)."""
    if not argv:
        return False
    program = argv[0].replace("\\", "/")
    return os.path.basename(program) in ("uvicorn", "uvicorn.exe") or program.endswith("uvicorn/__main__.py")


def _option(argv: Sequence[str], name: str) -> int | None:
    """The integer value of ``--name N`` or ``--name=N`` (the last one given), if any."""
    found: int | None = None
    for index, arg in enumerate(argv):
        text = None
        if arg == name and index + 1 < len(argv):
            text = argv[index + 1]
        elif arg.startswith(name + "="):
            text = arg[len(name) + 1 :]
        if text is not None:
            try:
                found = int(text)
            except ValueError:
                continue
    return found
