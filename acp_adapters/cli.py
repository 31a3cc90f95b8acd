"""The command line: ``python -m acp_adapters serve|agents module:registry``.

* ``serve myapp.agents:registry [--host 127.0.0.1] [--port 8000] [--prefix /acp] [--reload]``: a
  development server (uvicorn, ``pip install "acp-adapters[serve]"``) with the API under ``--prefix``.
  Settings come from the environment (``ACP_MAX_RUN_DURATION=30``..., see
  :meth:`~acp_adapters.core.settings.Settings.from_env`), the store from ``ACP_STORE``
  (``redis://localhost:6379/0``; the in-memory store by default).
* ``agents myapp.agents:registry [--json]``: the agents and their manifests.

``module:registry`` names an :class:`~acp_adapters.core.agents.AgentRegistry` or a function returning
one (``myapp.agents:make_registry``). A mistake (a bad name, a module that does not import, an attribute
that is no registry) ends the command with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from .core.agents import AgentRegistry
from .core.models import AgentsListResponse

__all__ = ["CommandError", "describe_agents", "load_registry", "main", "make_app"]

USAGE_ERROR = 2
_TARGET_VARIABLE = "ACP_ADAPTERS_SERVE_TARGET"
_PREFIX_VARIABLE = "ACP_ADAPTERS_SERVE_PREFIX"
_SERVE_EXTRA = 'pip install "acp-adapters[serve]"'


class CommandError(Exception):
    """A mistake on the command line: its message is the one line the command prints."""


def describe_agents(registry: AgentRegistry, *, as_json: bool = False) -> str:
    """The agents of ``registry`` as ``flask acp agents``, ``manage.py acp_agents`` and
    ``python -m acp_adapters agents`` print them: one line each (name and the first line of the
    description), or with ``as_json`` the manifests as ``GET /agents`` answers them."""
    if as_json:
        listing = AgentsListResponse(agents=[agent.manifest for agent in registry])
        return json.dumps(listing.model_dump(mode="json", exclude_none=True), indent=2)
    lines = []
    for agent in registry:
        summary = agent.manifest.description.strip().splitlines()
        lines.append(f"{agent.name:<24} {summary[0] if summary else ''}".rstrip())
    return "\n".join(lines) if lines else "(no agents)"


def load_registry(target: str) -> AgentRegistry:
    """The registry that ``module:attribute`` names (the attribute may be dotted, or a function that
    returns a registry). Raises :class:`CommandError` saying what is wrong."""
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name or not attribute:
        raise CommandError(f"{target!r} is not module:registry (for example myapp.agents:registry)")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would: the user's modules are where they run it
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise CommandError(
                f"no module named {module_name!r} (run the command where the module can be imported)"
            ) from exc
        raise CommandError(f"importing {module_name!r} failed: {_one_line(exc)}") from exc
    except Exception as exc:
        raise CommandError(f"importing {module_name!r} failed: {_one_line(exc)}") from exc
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise CommandError(f"{module_name!r} has no attribute {attribute!r}{_registries_hint(module)}")
        value = getattr(value, part)
    if not isinstance(value, AgentRegistry) and callable(value) and not isinstance(value, type):
        try:
            value = value()
        except Exception as exc:
            raise CommandError(f"calling {target} failed: {_one_line(exc)}") from exc
    if not isinstance(value, AgentRegistry):
        raise CommandError(
            f"{target} is a {type(value).__name__}, not an AgentRegistry or a function returning one"
            f"{_registries_hint(module)}"
        )
    return value


def make_app(registry: AgentRegistry, *, prefix: str = "/acp") -> Any:
    """The ASGI app ``serve`` runs: the API under ``prefix`` (settings from the environment, store
    from ``ACP_STORE``) and a 404 that points to it elsewhere."""
    from .asgi import ACPMiddleware
    from .core.settings import Settings
    from .stores import store_from_url

    settings = Settings.from_env()
    store = store_from_url(os.environ.get("ACP_STORE"), settings=settings)
    return ACPMiddleware(_NotFound(prefix), registry, prefix=prefix, store=store, settings=settings)


def app_from_environment() -> Any:
    """``make_app`` for the target in the environment: the factory uvicorn's ``--reload`` imports."""
    target = os.environ[_TARGET_VARIABLE]
    return make_app(load_registry(target), prefix=os.environ.get(_PREFIX_VARIABLE, "/acp"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit code (2 for a mistake, with one line on stderr)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "agents":
            text = describe_agents(load_registry(args.target), as_json=args.json)
            try:
                print(text, flush=True)
            except BrokenPipeError:  # `... | head`: the reader has what it wanted
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        return _serve(args)
    except CommandError as exc:
        print(f"acp_adapters: error: {exc}", file=sys.stderr)
        return USAGE_ERROR


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        raise CommandError(f"serve needs uvicorn: {_SERVE_EXTRA}") from None
    prefix = "/" + args.prefix.strip("/")
    registry = load_registry(args.target)  # in the parent too: a mistake stops it before any reload
    try:
        app = make_app(registry, prefix=prefix)
    except (ValueError, ImportError) as exc:  # a bad ACP_* variable or ACP_STORE
        raise CommandError(_one_line(exc)) from exc
    print(
        f"Serving {len(registry)} agent(s) at http://{args.host}:{args.port}{prefix}/agents",
        file=sys.stderr,
    )
    if args.reload:
        os.environ[_TARGET_VARIABLE] = args.target
        os.environ[_PREFIX_VARIABLE] = prefix
        uvicorn.run(
            "acp_adapters.cli:app_from_environment",
            factory=True,
            reload=True,
            host=args.host,
            port=args.port,
        )
    else:
        uvicorn.run(app, host=args.host, port=args.port)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m acp_adapters", description="Serve or list a registry of ACP agents."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{serve,agents}")
    serve = commands.add_parser("serve", help="a development server for a registry (uvicorn)")
    serve.add_argument("target", metavar="module:registry", help="e.g. myapp.agents:registry")
    serve.add_argument("--host", default="127.0.0.1", help="the interface to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="the port to listen on (8000)")
    serve.add_argument("--prefix", default="/acp", help="where the API is mounted (/acp)")
    serve.add_argument("--reload", action="store_true", help="restart when a file changes")
    agents = commands.add_parser("agents", help="list the agents of a registry and their manifests")
    agents.add_argument("target", metavar="module:registry", help="e.g. myapp.agents:registry")
    agents.add_argument("--json", action="store_true", help="the manifests, as GET /agents answers")
    return parser


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _registries_hint(module: Any) -> str:
    names = sorted(name for name, value in vars(module).items() if isinstance(value, AgentRegistry))
    return f" (registries in {module.__name__}: {', '.join(names)})" if names else ""


class _NotFound:
    """The app under the API: a 404 that says where the API is, and a lifespan that completes."""

    def __init__(self, prefix: str) -> None:
        self.body = json.dumps(
            {"code": "not_found", "message": f"not found: the ACP API is under {prefix}/", "data": None}
        ).encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rpartition(".")[2]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        elif scope["type"] == "http":
            headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(self.body))]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": self.body})
