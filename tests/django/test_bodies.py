"""Request bodies under Django: the core's ``max_body_size`` applies (not Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE``), and a chunked body under WSGI is read when the server ends it."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings

from tests.django.conftest import Served
from tests.helpers import acp_error, ok_json, run_body

pytestmark = pytest.mark.django


def test_bodies_over_djangos_upload_limit_but_under_the_core_limit_are_served(served: Served) -> None:
    text = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 100_000)
    run = ok_json(served.target().client.request("POST", "/runs", json=run_body("echo", text)), 200, "Run")
    assert run["output"][0]["parts"][0]["content"] == text


def test_bodies_over_the_core_limit_get_413(served: Served) -> None:
    text = "x" * (4 * 1024 * 1024 + 1)
    answer = served.target().client.request("POST", "/runs", json=run_body("echo", text))
    assert acp_error(answer, 413, "invalid_input")["data"] == {"max_body_size": 4 * 1024 * 1024}


# Django's WSGI handler checks the database connections as each request starts and ends.
@pytest.mark.django_db
@pytest.mark.parametrize("terminated", [True, False])
def test_a_chunked_body_under_wsgi(wsgi: Served, terminated: bool) -> None:
    from example_django.wsgi import application

    body = json.dumps(run_body("echo", "chunked")).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/acp/runs",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "HTTP_TRANSFER_ENCODING": "chunked",  # no CONTENT_LENGTH
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": terminated,
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
    }
    started: list[str] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], object]:
        started.append(status)
        return lambda body: None  # PEP 3333's write(), which Django never calls

    result = application(environ, start_response)
    answer = json.loads(b"".join(result))
    result.close()
    if terminated:  # the server (gunicorn, uWSGI) says where the body ends: it is read
        assert started == ["200 OK"] and answer["output"][0]["parts"][0]["content"] == "chunked"
    else:  # PEP 3333 forbids reading past CONTENT_LENGTH: no body, which the core answers with 422
        assert started[0].startswith("422") and answer["code"] == "invalid_input"


def test_a_json_body_sent_as_text_plain_gets_415(served: Served) -> None:
    # The Content-Type reaches the core as sent: a cross-site form or fetch "without preflight" can
    # only send text/plain (or a form type), which the core refuses before reading the body.
    body = json.dumps(run_body("echo", "hi")).encode()
    for content_type in ("text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded"):
        answer = served.target().client.request(
            "POST", "/runs", content=body, headers={"Content-Type": content_type}
        )
        assert acp_error(answer, 415, "invalid_input")["data"] == {"content_type": content_type}
    ok = served.target().client.request(
        "POST", "/runs", content=body, headers={"Content-Type": "application/json"}
    )
    assert ok_json(ok, 200, "Run")["status"] == "completed"


def test_a_content_length_over_the_limit_is_refused_before_the_body_is_read(wsgi: Served) -> None:
    from django.test import Client

    # A WSGI input that fails if read: the declared length alone gets the 413.
    class Unreadable(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise AssertionError("the body was read")

    wsgi_input: dict[str, Any] = {"wsgi.input": Unreadable()}

    answer = Client(raise_request_exception=False).generic(
        "POST",
        "/acp/runs",
        content_type="application/json",
        CONTENT_LENGTH=str(200 * 1024 * 1024),
        **wsgi_input,
    )
    assert answer.status_code == 413
    assert json.loads(answer.content)["data"] == {"max_body_size": 4 * 1024 * 1024}
