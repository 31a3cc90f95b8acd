"""A Starlette app with a page of its own at ``/``, the ACP API at ``/acp`` and, for holders of a
token, at ``/acp-private``; the same agents over A2A at ``/a2a`` and ``/a2a-private`` (each sharing
its ACP mount's engine: ``/a2a/echo/.well-known/agent-card.json`` is the card of ``echo``).

Run it from the repository root: ``uvicorn example_starlette.app:app``. The environment, read once
when the app is made:

* ``ACP_<SETTING>``: any :class:`~acp_adapters.Settings` field, on top of ``DEMO_SETTINGS``
  (``Settings.from_env``): ``ACP_MAX_RUN_DURATION=2``, ``ACP_MAX_BODY_SIZE=1048576``,
  ``ACP_TRUSTED_ORIGINS=http://127.0.0.1:8001,http://127.0.0.1:8002`` (lists are comma-separated).
  No origin is trusted unless ``ACP_TRUSTED_ORIGINS`` names it: two local instances sharing a session
  name each other there.
* ``ACP_STORE``: a shared store (``redis://127.0.0.1:6379/0``); the default is the in-memory store.
* ``ACP_EXECUTOR=celery``: runs execute on the Celery worker of ``example_agents.worker`` (needs a
  shared store; docs/celery.md), not in the web process.
* ``ACP_DEMO_TOKENS``: ``alice=token-a,bob=token-b``, the bearer tokens of ``/acp-private`` and the
  owners they stand for (unset: nobody gets in). Runs, sessions and resources there belong to the
  token's owner; a request without a known token gets 401 with ``WWW-Authenticate``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.types import Scope

from acp_adapters import Settings
from acp_adapters.a2a.asgi import A2AApp
from acp_adapters.asgi import ACPApp
from example_agents import (
    DEMO_SETTINGS,
    demo_registry,
    demo_tokens,
    executor_from_env,
    private_registry,
    store_from_env,
)


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse(
        "A Starlette app; its agents are served over ACP at /acp and over A2A at /a2a, and to holders of a "
        "token at /acp-private and /a2a-private\n"
    )


def create_app() -> Starlette:
    """The app, configured from the environment (see the module docstring)."""
    settings = Settings.from_env(base=DEMO_SETTINGS)
    tokens = demo_tokens()

    def token_owner(scope: Scope) -> str | None:
        authorization = next(
            (value.decode("latin-1") for name, value in scope["headers"] if name == b"authorization"), None
        )
        return tokens.owner(authorization)

    public = ACPApp(demo_registry(), settings=settings, store=store_from_env(), executor=executor_from_env())
    private = ACPApp(
        private_registry(),
        settings=settings,
        store=store_from_env("private"),
        owner=token_owner,
        authorize=tokens.authorize,
        executor=executor_from_env("acp-private"),
    )
    return Starlette(
        routes=[
            Route("/", home),
            Mount("/acp-private", app=private),
            Mount("/acp", app=public),
            Mount("/a2a-private", app=A2AApp(private, acp_url="/acp-private")),
            Mount("/a2a", app=A2AApp(public)),
        ]
    )


app = create_app()
