"""A Flask app with a page of its own at ``/`` and the ACP API at ``/acp``.

Run it from the repository root with the Flask dev server, ``flask --app example_flask.app run``, or
with gunicorn, ``gunicorn -w 1 -k gthread --threads 32 example_flask.app:app``. ``ACP_STORE`` picks a
shared store (``redis://127.0.0.1:6379/0``); the default is the in-memory store, which needs a single
worker process.
"""

from __future__ import annotations

from flask import Flask

from acp_adapters.flask import ACP
from example_agents import DEMO_SETTINGS, demo_registry, store_from_env

app = Flask(__name__)


@app.get("/")
def home() -> str:
    return "A Flask app; its agents are served over ACP at /acp\n"


acp = ACP(app, demo_registry(), settings=DEMO_SETTINGS, store=store_from_env())
