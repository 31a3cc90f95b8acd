"""A Flask app with two ACP mounts and a probe (``/probe``) that tells, without starting anything, whether
this worker process's ACP services had started before the request: the Flask app of the warm-up tests."""

from __future__ import annotations

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue

from acp_adapters.flask import ACP
from example_agents import demo_registry, private_registry, store_from_env
from tests.warm.probe import report

app = Flask(__name__)
ACP(app, demo_registry(), store=store_from_env())
ACP(app, private_registry(), name="acp-private", url_prefix="/acp-private", store=store_from_env("private"))


@app.get("/probe")
def probe() -> ResponseReturnValue:
    services = [ACP.state(app).service, ACP.state(app, "acp-private").service]
    return jsonify(report(services))
