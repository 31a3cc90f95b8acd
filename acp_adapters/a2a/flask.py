"""The A2A mount for Flask, beside an :class:`~acp_adapters.flask.ACP` mount whose agents and engine it
shares.

>>> acp = ACP(app, agents)      # /acp                                  # doctest: +SKIP
>>> A2A(app, acp)               # /a2a: the same agents, runs, sessions # doctest: +SKIP

or, with an app factory, ``a2a = A2A(acp=acp)`` then ``a2a.init_app(app)`` after ``acp.init_app(app)``.
The mount is a blueprint (the app's hooks and error handlers apply to it as to any route); its owner
function, settings (``ACP_*`` of ``app.config``), store and ``authorize`` hook are the ACP mount's, and it
answers on the process's event loop through its own bridge, as the ACP mount does.
"""

from __future__ import annotations

from dataclasses import dataclass

try:
    from flask import Blueprint, Flask, current_app, request
    from flask import Response as FlaskResponse
    from flask.blueprints import BlueprintSetupState
    from werkzeug.routing import Rule
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f'acp_adapters.a2a.flask needs Flask ({exc}): pip install "acp-adapters[flask]"'
    ) from exc

from acp_adapters._wsgi_environ import request_from_environ
from acp_adapters.bridge import SyncBridge, SyncStreamResponse
from acp_adapters.flask import ACP, ACPState, _AnyPath, read_body_of_stream

from .service import A2AService

__all__ = ["A2A", "A2AState"]


@dataclass
class A2AState:
    """What the extension keeps per mount, in ``app.extensions["a2a"]`` (``["a2a:<name>"]`` for others)."""

    service: A2AService
    bridge: SyncBridge
    url_prefix: str
    acp: ACPState


class A2A:
    """Serves the agents of an ACP mount of a Flask app over A2A.

    ``acp`` is the :class:`~acp_adapters.flask.ACP` extension (initialised on the app first).
    ``url_prefix`` (default ``/<name>``, ``/a2a``) is where the mount is; ``name`` names its blueprint
    (one ``A2A`` per ACP mount: ``A2A(app, private, name="a2a-private")``). ``acp_url`` is where the ACP
    mount is (default: its prefix), for the URLs of session history (see
    :class:`~acp_adapters.a2a.service.A2AService`).
    """

    def __init__(
        self,
        app: Flask | None = None,
        acp: ACP | None = None,
        *,
        name: str = "a2a",
        url_prefix: str | None = None,
        acp_url: str | None = None,
    ) -> None:
        if app is not None and not isinstance(app, Flask):
            raise TypeError(f"A2A(app, acp) needs a Flask app or None, not {type(app).__name__}")
        if not isinstance(acp, ACP):
            raise TypeError(
                "A2A(app, acp) needs the ACP extension whose agents and engine it serves: "
                f"A2A(app, ACP(app, agents)), not {type(acp).__name__}"
            )
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"A2A(name=...) must be a non-empty name without dots, like 'a2a', not {name!r}")
        self.acp = acp
        self.name = name
        self.url_prefix = url_prefix
        self.acp_url = acp_url
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the A2A blueprint and its state on ``app`` (after the ACP mount's ``init_app``)."""
        key = _extension_key(self.name)
        if key in app.extensions:
            raise ValueError(
                f"an A2A mount named {self.name!r} is already on this app: give each its own name"
            )
        try:
            acp_state = ACP.state(app, self.acp.name)
        except KeyError:
            raise ValueError(
                f"the ACP mount {self.acp.name!r} is not on this app yet: call acp.init_app(app) before "
                "a2a.init_app(app)"
            ) from None
        prefix = self.url_prefix if self.url_prefix is not None else "/" + self.name
        prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        service = A2AService(acp_state.service, acp_url=self.acp_url or acp_state.url_prefix or "/")
        state = A2AState(service=service, bridge=SyncBridge(service), url_prefix=prefix, acp=acp_state)
        app.extensions[key] = state
        app.register_blueprint(_blueprint(state, self.name), url_prefix=prefix)

    @staticmethod
    def state(app: Flask | None = None, name: str = "a2a") -> A2AState:
        """The state of the mount ``name`` on ``app`` (default: the current app)."""
        state: A2AState = (app or current_app).extensions[_extension_key(name)]
        return state


def _extension_key(name: str) -> str:
    return "a2a" if name == "a2a" else f"a2a:{name}"


def _blueprint(state: A2AState, name: str) -> Blueprint:
    blueprint = Blueprint(name, __name__)

    def serve(path: str = "") -> FlaskResponse:
        limit = state.service.settings.max_body_size
        length = request.content_length
        body = request.get_data() if length is not None and length <= limit else read_body_of_stream(limit)
        owner = state.acp.owner() if state.acp.owner is not None else None
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
        # Every method and every path under the prefix goes to the service, which answers them all.
        endpoint = f"{setup.name_prefix}.{setup.name}.api".lstrip(".")
        prefix = setup.url_prefix or ""
        setup.app.url_map.converters.setdefault("acp_any", _AnyPath)
        for rule in (prefix or "/", prefix + "/<acp_any:path>"):
            setup.app.url_map.add(Rule(rule, endpoint=endpoint, strict_slashes=False, merge_slashes=False))
        setup.app.view_functions[endpoint] = serve

    blueprint.record(add_rules)
    return blueprint
