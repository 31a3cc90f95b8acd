"""A Starlette app with a page of its own at ``/`` and the ACP API at ``/acp``.

Run it from the repository root: ``uvicorn example_starlette.app:app``. ``ACP_STORE`` picks a shared
store (``redis://127.0.0.1:6379/0``); the default is the in-memory store.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from acp_adapters.asgi import ACPApp
from example_agents import DEMO_SETTINGS, demo_registry, store_from_env


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("A Starlette app; its agents are served over ACP at /acp\n")


app = Starlette(
    routes=[
        Route("/", home),
        Mount("/acp", app=ACPApp(demo_registry(), settings=DEMO_SETTINGS, store=store_from_env())),
    ]
)
