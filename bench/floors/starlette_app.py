"""The Starlette floor: ``uvicorn bench.floors.starlette_app:app`` (routes under /acp)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Mount, Route

from bench.floors import answers

JSON = "application/json"


async def create_run(request: Request) -> Response:
    try:
        run = answers.parse(await request.body())
    except ValidationError:
        return Response(b'{"code":"invalid_input","message":"bad request"}', 422, media_type=JSON)
    if run.mode == "stream":
        events = answers.stream_events(answers.chunks_count(run))
        return StreamingResponse(_iterate(events), media_type="text/event-stream")
    if run.mode == "async":
        return Response(answers.async_run(), 202, media_type=JSON)
    return Response(answers.completed_run(), media_type=JSON)


async def _iterate(events: tuple[bytes, ...]) -> AsyncIterator[bytes]:
    for event in events:
        yield event


async def get_run(request: Request) -> Response:
    return Response(answers.completed_run(), media_type=JSON)


async def agents(request: Request) -> Response:
    return Response(answers.AGENTS, media_type=JSON)


app = Starlette(
    routes=[
        Mount(
            "/acp",
            routes=[
                Route("/runs", create_run, methods=["POST"]),
                Route("/runs/{run_id}", get_run, methods=["GET"]),
                Route("/agents", agents, methods=["GET"]),
            ],
        )
    ]
)
