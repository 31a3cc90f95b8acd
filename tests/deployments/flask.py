"""The Flask example in process (Flask's test client) and under gunicorn (1 worker, gthread, 32 threads)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import flask
import pytest

from .base import Deployment, HttpResult, StreamedAnswer, Target, gunicorn_command, merged_headers, serve


class FlaskContractClient:
    """A :class:`~tests.deployments.base.ContractClient` over Flask's test client.

    Each request gets its own test client, so that threads do not share one. A streamed answer is
    read to its end and then closed, as a WSGI server would; :meth:`stream` reads it as the app
    writes it and closes it when left.
    """

    live_streams = True

    def __init__(self, app: flask.Flask, base_url: str) -> None:
        self.app = app
        self.base_url = base_url

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResult:
        options: dict[str, Any] = {"method": method, "headers": dict(headers or {})}
        if json is not None:
            options["json"] = json
        elif content is not None:
            options["data"] = content
        response = self.app.test_client().open(self.base_url + path, **options)
        try:
            body = response.get_data()
        finally:
            response.close()
        merged: dict[str, str] = {}
        for name, value in response.headers.items():
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return HttpResult(status=response.status_code, headers=merged, body=body)

    @contextlib.contextmanager
    def stream(
        self, method: str, path: str, *, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> Iterator[StreamedAnswer]:
        client = self.app.test_client()
        options: dict[str, Any] = {"method": method, "headers": dict(headers or {}), "buffered": False}
        if json is not None:
            options["json"] = json
        response = client.open(self.base_url + path, **options)
        try:
            yield StreamedAnswer(
                response.status_code, merged_headers(response.headers.items()), response.iter_encoded()
            )
        finally:
            response.close()  # what a WSGI server does when the client has gone


@contextlib.contextmanager
def _inprocess() -> Iterator[Target]:
    # Imported here so that a broken example fails the tests that use it, not the collection.
    from example_flask.app import app

    base_url = "http://localhost/acp"
    yield Target(base_url=base_url, client=FlaskContractClient(app, base_url), name="flask-inprocess")


def gunicorn(*, env: Mapping[str, str] | None = None) -> contextlib.AbstractContextManager[Target]:
    """The Flask example under gunicorn, with ``env`` added to its environment."""
    return serve(gunicorn_command("example_flask.app:app"), env=env, name="flask-gunicorn")


def _gunicorn() -> contextlib.AbstractContextManager[Target]:
    return gunicorn()


DEPLOYMENTS = [
    Deployment("flask-inprocess", _inprocess, (pytest.mark.flask,)),
    Deployment("flask-gunicorn", _gunicorn, (pytest.mark.flask, pytest.mark.slow), real_server=True),
]
