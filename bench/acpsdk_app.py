"""The official acp-sdk 1.0.3 server serving the same ``echo`` and ``chunks`` agents as the demo.

Runs only inside the harness's own virtualenv (``bench/.venv-acpsdk``, see :mod:`bench.acpsdk_venv`):
``uvicorn --app-dir bench acpsdk_app:app``. Paths are at the root (no ``/acp`` prefix). acp-sdk is a
bench-only dependency; nothing in ``acp_adapters`` imports it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from acp_sdk.models import Message
from acp_sdk.server import Context, agent
from acp_sdk.server.app import create_app


@agent()
async def echo(input: list[Message], context: Context) -> AsyncGenerator[Message, None]:
    """Echoes every input message back."""
    for message in input:
        yield message


@agent()
async def chunks(input: list[Message], context: Context) -> AsyncGenerator[str, None]:
    """Yields N text parts "0 ", "1 ", ... where N is the last input message's text (default 10)."""
    try:
        count = min(int(str(input[-1]).strip()), 100_000)
    except ValueError:
        count = 10
    for i in range(count):
        yield f"{i} "


app = create_app(echo, chunks)
