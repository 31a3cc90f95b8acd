"""A Flask app with a page of its own at ``/``, the ACP API at ``/acp`` and, for holders of a token,
at ``/acp-private``; the same agents over A2A at ``/a2a`` and ``/a2a-private`` (each on its ACP
mount's engine).

Run it from the repository root with the Flask dev server, ``flask --app example_flask.app run``, or
with gunicorn, ``gunicorn -w 1 -k gthread --threads 32 example_flask.app:app``. The environment, read
once when the app is made:

* ``ACP_<SETTING>``: any :class:`~acp_adapters.Settings` field, on top of ``DEMO_SETTINGS``
  (``Settings.from_env``): ``ACP_MAX_RUN_DURATION=2``, ``ACP_MAX_BODY_SIZE=1048576``,
  ``ACP_TRUSTED_ORIGINS=http://127.0.0.1:8001,http://127.0.0.1:8002`` (lists are comma-separated).
  No origin is trusted unless ``ACP_TRUSTED_ORIGINS`` names it: two local instances sharing a session
  name each other there.
* ``ACP_STORE``: a shared store (``redis://127.0.0.1:6379/0``); the default is the in-memory store,
  which needs a single worker process.
* ``ACP_EXECUTOR=celery``: runs execute on the Celery worker of ``example_agents.worker`` (needs a
  shared store; docs/celery.md), not in the web process.
* ``ACP_DEMO_TOKENS``: ``alice=token-a,bob=token-b``, the bearer tokens of ``/acp-private`` and the
  owners they stand for (unset: nobody gets in). Runs, sessions and resources there belong to the
  token's owner; a request without a known token gets 401 with ``WWW-Authenticate``.
"""

from __future__ import annotations

from flask import Flask, request

from acp_adapters import Settings
from acp_adapters.a2a.flask import A2A
from acp_adapters.flask import ACP
from example_agents import (
    DEMO_SETTINGS,
    demo_registry,
    demo_tokens,
    executor_from_env,
    private_registry,
    store_from_env,
)


def create_app() -> Flask:
    """The app, configured from the environment (see the module docstring)."""
    app = Flask(__name__)
    settings = Settings.from_env(base=DEMO_SETTINGS)
    tokens = demo_tokens()

    @app.get("/")
    def home() -> str:
        return (
            "A Flask app; its agents are served over ACP at /acp and over A2A at /a2a, and to holders of a "
            "token at /acp-private and /a2a-private\n"
        )

    acp = ACP(app, demo_registry(), settings=settings, store=store_from_env(), executor=executor_from_env())
    A2A(app, acp)

    # A second mount: one ACP per mount, each with its own name (its blueprint and CLI group).
    private = ACP(
        app,
        private_registry(),
        name="acp-private",
        url_prefix="/acp-private",
        settings=settings,
        store=store_from_env("private"),
        owner=lambda: tokens.owner(request.headers.get("Authorization")),
        authorize=tokens.authorize,
        executor=executor_from_env("acp-private"),
    )
    A2A(app, private, name="a2a-private")
    return app


app = create_app()
