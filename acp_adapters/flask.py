"""The Flask extension: the ACP API as a blueprint of the host app.

>>> acp = ACP(app, agents)              # the one-line form         # doctest: +SKIP
>>> acp = ACP(registry=agents)          # or the app-factory form   # doctest: +SKIP
>>> acp.init_app(app)                                               # doctest: +SKIP

The API is a blueprint under ``ACP_URL_PREFIX`` (``/acp`` by default), so the app's ``before_request``
hooks, auth decorators and error handlers apply to it as to any other route. Settings come from
``app.config`` (``ACP_MAX_BODY_SIZE``, ``ACP_AWAIT_TIMEOUT``, ``ACP_RUN_RETENTION``...: ``ACP_`` and the
upper-case name of a :class:`~acp_adapters.core.settings.Settings` field). The core runs on the
process's event loop through :mod:`acp_adapters.bridge`; sync agents run inside the app context.
``flask acp agents`` lists the agents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

try:
    import click
    from flask import Blueprint, Flask, current_app, request
    from flask import Response as FlaskResponse
    from flask.blueprints import BlueprintSetupState
    from werkzeug.routing import PathConverter, Rule
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(f'acp_adapters.flask needs Flask ({exc}): pip install "acp-adapters[flask]"') from exc

from ._wsgi_environ import read_body, request_from_environ
from .bridge import SyncBridge, SyncStreamResponse
from .cli import describe_agents
from .core.agents import AgentRegistry
from .core.arguments import check_service_arguments
from .core.build import build_service
from .core.executors import Executor
from .core.service import ACPService, Authorize
from .core.settings import Settings
from .core.store import Store
from .stores import store_from_url
from .workers import warn_if_store_not_shared

__all__ = ["ACP", "ACPState", "settings_from_config"]

_SETTING_KEYS = {f"ACP_{f.name.upper()}": f.name for f in fields(Settings)}
_OWN_KEYS = {"ACP_URL_PREFIX", "ACP_STORE"}
_LIST_KEYS = {f"ACP_{f.name.upper()}" for f in fields(Settings) if str(f.type).startswith("tuple")}


@dataclass
class ACPState:
    """What the extension keeps per mount, in ``app.extensions["acp"]`` (``["acp:<name>"]`` for others)."""

    service: ACPService
    bridge: SyncBridge
    url_prefix: str
    owner: Callable[[], str | None] | None


class ACP:
    """Serves a registry of agents over ACP from a Flask app.

    ``url_prefix`` (default: ``app.config["ACP_URL_PREFIX"]``, else ``/acp``) is where the API is
    mounted. ``name`` (default ``acp``) names the mount's blueprint and CLI group: an app serves several
    mounts with one ``ACP`` each, ``ACP(app, private, name="acp-private", url_prefix="/acp-private")``
    (a mount other than ``acp`` defaults to ``/<name>`` and ignores ``ACP_URL_PREFIX``).
    ``settings`` are the base settings; ``ACP_*`` keys of ``app.config`` override them. Without either,
    ``debug`` follows the app's (``flask run --debug``).
    ``owner`` is called inside the request (after the app's ``before_request`` hooks) and returns the
    caller's identity, e.g. ``owner=lambda: g.user_id``; runs, sessions and resources are scoped to it.
    ``authorize(request, agent)`` is the core's authorization hook (see
    :class:`~acp_adapters.core.service.ACPService`), the same in every framework; the request's
    ``native`` is Flask's request object. It runs on the bridge's event loop (in a copy of the request's
    context, so ``flask.request`` and ``g`` work): a sync hook must not block. ``executor`` hands the
    runs to other processes, e.g. Celery workers (``acp_adapters.celery.CeleryExecutor``: docs/celery.md).
    """

    def __init__(
        self,
        app: Flask | None = None,
        registry: AgentRegistry | None = None,
        *,
        name: str = "acp",
        url_prefix: str | None = None,
        store: Store | None = None,
        settings: Settings | None = None,
        owner: Callable[[], str | None] | None = None,
        authorize: Authorize | None = None,
        executor: Executor | None = None,
    ) -> None:
        if isinstance(app, AgentRegistry):
            raise TypeError(
                "ACP(app, registry): the Flask app comes first; for an app factory, "
                "acp = ACP(registry=registry), then acp.init_app(app)"
            )
        if app is not None and not isinstance(app, Flask):
            raise TypeError(f"ACP(app, registry) needs a Flask app or None, not {type(app).__name__}")
        if registry is None:
            raise TypeError(
                "ACP() needs the registry of agents to serve: ACP(app, registry) or ACP(registry=...)"
            )
        # Checked here, not only in init_app (which makes the service): ACP(registry=...) of an app
        # factory may meet its app much later.
        check_service_arguments(
            "ACP",
            registry,
            store=store,
            settings=settings,
            executor=executor,
            owner=owner,
            authorize=authorize,
        )
        if url_prefix is not None and not isinstance(url_prefix, str):
            raise TypeError(f"ACP(url_prefix=...) needs a URL path such as '/acp', not {url_prefix!r}")
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(
                f"ACP(name=...) must be a non-empty name without dots, like 'acp-private', not {name!r}"
            )
        self.registry = registry
        self.name = name
        self.url_prefix = url_prefix
        self.store = store
        self.settings = settings
        self.owner = owner
        self.authorize = authorize
        self.executor = executor
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the ACP blueprint, its CLI commands and its state on ``app``."""
        if _extension_key(self.name) in app.extensions:
            raise ValueError(
                f"an ACP mount named {self.name!r} is already on this app: give each mount its own name, "
                f"ACP(app, registry, name='acp-private', url_prefix='/acp-private')"
            )
        prefix = self.url_prefix
        if prefix is None:
            default = "/" + self.name
            prefix = app.config.get("ACP_URL_PREFIX", default) if self.name == "acp" else default
        prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        settings = settings_from_config(app.config, self.settings)
        if self.settings is None and "ACP_DEBUG" not in app.config and app.debug:
            settings = replace(settings, debug=True)  # (flask run --debug), as Django's DEBUG does
        store = self.store
        if store is None and app.config.get("ACP_STORE"):
            store = store_from_url(app.config["ACP_STORE"], settings=settings)  # e.g. redis://host:6379/0
        # Sync agents run in worker threads, inside an app context of this app (current_app, g).
        service = build_service(
            "ACP",
            self.registry,
            store=store,
            settings=settings,
            sync_agent_context=app.app_context,
            authorize=self.authorize,
            executor=self.executor,
        )
        state = ACPState(service=service, bridge=SyncBridge(service), url_prefix=prefix, owner=self.owner)
        app.extensions[_extension_key(self.name)] = state
        app.register_blueprint(_blueprint(state, self.name), url_prefix=prefix)
        warn_if_store_not_shared(service.store)

    @staticmethod
    def state(app: Flask | None = None, name: str = "acp") -> ACPState:
        """The state of the mount ``name`` on ``app`` (default: the current app)."""
        state: ACPState = (app or current_app).extensions[_extension_key(name)]
        return state


def settings_from_config(config: dict[str, Any], base: Settings | None = None) -> Settings:
    """``base`` (or the defaults) with the ``ACP_*`` keys of ``config`` applied.

    Raises ``ValueError`` naming an unknown ``ACP_*`` key or a bad value, at start-up.
    """
    given = {key: value for key, value in config.items() if key.startswith("ACP_") and key not in _OWN_KEYS}
    unknown = sorted(set(given) - set(_SETTING_KEYS))
    if unknown:
        known = ", ".join(sorted(_OWN_KEYS | set(_SETTING_KEYS)))
        raise ValueError(f"unknown ACP config key(s) {', '.join(unknown)}; known keys: {known}")
    values = {_SETTING_KEYS[key]: _listed(key, value) for key, value in given.items()}
    checked = Settings.from_mapping(values)
    return replace(base or Settings(), **{name: getattr(checked, name) for name in values})


def _extension_key(name: str) -> str:
    return "acp" if name == "acp" else f"acp:{name}"


def _listed(key: str, value: Any) -> Any:
    """A list setting given as one string: ``"*"`` or ``"https://a.example, https://b.example"``."""
    if isinstance(value, str) and key in _LIST_KEYS:
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _blueprint(state: ACPState, name: str) -> Blueprint:
    blueprint = Blueprint(name, __name__, cli_group=name)

    def serve(path: str = "") -> FlaskResponse:
        limit = state.service.settings.max_body_size
        length = request.content_length
        # A body of known, acceptable size goes through Flask (which keeps it if a hook read it
        # already); any other is read from the stream, never beyond the limit.
        body = request.get_data() if length is not None and length <= limit else read_body_of_stream(limit)
        owner = state.owner() if state.owner is not None else None
        neutral = request_from_environ(
            request.environ,
            max_body_size=limit,
            mount=state.url_prefix,
            body=body,
            owner=owner,
            native=request._get_current_object(),  # type: ignore[attr-defined]
        )
        response = state.bridge.handle(neutral)
        if isinstance(response, SyncStreamResponse):
            return FlaskResponse(
                response.body, status=response.status, headers=response.headers, direct_passthrough=True
            )
        return FlaskResponse(response.body, status=response.status, headers=response.headers)

    def add_rules(setup: BlueprintSetupState) -> None:
        # Rules without a method list match every method, so that the core answers any method it
        # does not serve (405 as ACP JSON): Flask's add_url_rule always sets a list.
        endpoint = f"{setup.name_prefix}.{setup.name}.api".lstrip(".")
        prefix = setup.url_prefix or ""
        setup.app.url_map.converters.setdefault("acp_any", _AnyPath)
        for rule in (prefix or "/", prefix + "/<acp_any:path>"):
            setup.app.url_map.add(Rule(rule, endpoint=endpoint, strict_slashes=False, merge_slashes=False))
        setup.app.view_functions[endpoint] = serve

    blueprint.record(add_rules)
    blueprint.cli.help = "The agents served over ACP."

    @blueprint.cli.command("agents")
    def agents() -> None:
        """List the agents served over ACP."""
        click.echo(describe_agents(state.service.registry))

    return blueprint


class _AnyPath(PathConverter):
    """Werkzeug's ``path`` with any character, line breaks included: the core answers every path."""

    regex = r"[\s\S]*?"
    # Werkzeug takes a converter whose regex has no "/" as matching one segment only; this one spans them.
    part_isolating = False


def read_body_of_stream(limit: int) -> bytes:
    """Up to ``limit + 1`` bytes of the current request's body stream (chunked or too large)."""
    return read_body({"wsgi.input": request.stream, "wsgi.input_terminated": True}, limit)
