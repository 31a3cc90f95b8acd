"""How many worker processes the server runs, the start-up warning when they would not share runs,
and the warm-up of a new worker process.

With the in-memory store each worker process keeps its own runs, so under a server that runs several
(``gunicorn -w 4``, ``uvicorn --workers 2``, ``WEB_CONCURRENCY=4``) a request about a run that lands on
another worker gets 404. Every adapter calls :func:`warn_if_store_not_shared` when it makes its service
(Starlette/FastAPI and Flask when the app is built, Django on the first request).

A WSGI worker starts its event loop, engine and store connections on its first request, which then
takes longer than the next (tens of milliseconds; more with a shared store). :func:`warm_up` starts
them when the worker starts; under gunicorn, :func:`post_worker_init` is the hook that calls it
(``from acp_adapters.workers import post_worker_init`` in ``gunicorn.conf.py``). ASGI servers start
them at lifespan start-up (see :mod:`acp_adapters.asgi`).
"""

from __future__ import annotations

import importlib
import logging
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .core.store import Store

__all__ = ["post_worker_init", "server_worker_count", "warm_up", "warn_if_store_not_shared"]

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


#: What makes the mounts that are made on first use, for :func:`warm_up` (Django's sites add theirs).
MOUNT_LOADERS: list[Callable[[], object]] = []


def warm_up(*apps: Any) -> int:
    """Start the ACP services of this worker process now, not on its first request; returns how many.

    For a WSGI worker process that has just started (after the fork, never in a pre-fork master: the
    event loop is a thread, and threads and connections do not survive a fork). Each service's event
    loop, engine and store connections start, and a ``GET /ping`` goes through it. ``apps`` are
    Flask apps, :class:`~acp_adapters.wsgi.ACPWSGIApp` or
    :class:`~acp_adapters.wsgi.ACPWSGIMiddleware` objects; without any, every ACP service of the
    process: the Flask and WSGI mounts made so far and, when Django is set up, the mounts of its URL
    configuration (imported here, as the first request would). Not for an ASGI server: there the
    services start on the server's own loop at lifespan start-up (Django's mounts on their first
    request).
    """
    from .bridge import SyncBridge, all_bridges

    bridges: list[SyncBridge] = []
    if apps:
        for app in apps:
            found = _bridges_of(app)
            if not found:
                raise TypeError(f"warm_up() found no ACP mount in {type(app).__name__} {app!r:.80}")
            bridges += found
    else:
        for load in MOUNT_LOADERS:
            load()
        bridges = all_bridges()
    for bridge in dict.fromkeys(bridges):
        bridge.warm_up()
    return len(dict.fromkeys(bridges))


def post_worker_init(worker: Any) -> None:
    """gunicorn's server hook, once a worker has loaded the app: :func:`warm_up` of its services (a
    failure is logged, not raised: the worker's first request then starts them).

    In ``gunicorn.conf.py`` (or the module of ``-c python:...``)::

        from acp_adapters.workers import post_worker_init  # noqa: F401
    """
    try:
        count = warm_up()
    except Exception:  # the worker still serves: its first request starts what did not
        logger.warning("acp-adapters: the warm-up of worker %s failed", os.getpid(), exc_info=True)
    else:
        logger.debug("acp-adapters: %d ACP service(s) warmed up in worker %s", count, os.getpid())


def _bridges_of(app: Any) -> list[Any]:
    from .bridge import SyncBridge

    if isinstance(app, SyncBridge):
        return [app]
    bridge = getattr(app, "bridge", None)
    if isinstance(bridge, SyncBridge):  # ACPWSGIApp, a Django ACPSite
        return [bridge]
    acp = getattr(app, "acp", None)
    if acp is not None and acp is not app:  # ACPWSGIMiddleware
        return _bridges_of(acp)
    extensions = getattr(app, "extensions", None)  # a Flask app: one ACPState per mount
    if isinstance(extensions, dict):
        return [
            state.bridge
            for state in extensions.values()
            if isinstance(getattr(state, "bridge", None), SyncBridge)
        ]
    return []


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
