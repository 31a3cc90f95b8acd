"""The Flask floor: ``gunicorn -k gthread --threads 32 bench.floors.flask_app:app`` (routes under /acp)."""

from __future__ import annotations

from flask import Flask, Response, request
from pydantic import ValidationError

from bench.floors import answers

JSON = "application/json"

app = Flask(__name__)


@app.post("/acp/runs")
def create_run() -> Response:
    try:
        run = answers.parse(request.get_data())
    except ValidationError:
        return Response(b'{"code":"invalid_input","message":"bad request"}', 422, mimetype=JSON)
    if run.mode == "stream":
        events = answers.stream_events(answers.chunks_count(run))
        return Response(iter(events), mimetype="text/event-stream")
    if run.mode == "async":
        return Response(answers.async_run(), 202, mimetype=JSON)
    return Response(answers.completed_run(), mimetype=JSON)


@app.get("/acp/runs/<run_id>")
def get_run(run_id: str) -> Response:
    return Response(answers.completed_run(), mimetype=JSON)


@app.get("/acp/agents")
def agents() -> Response:
    return Response(answers.AGENTS, mimetype=JSON)
