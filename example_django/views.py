"""The project's own page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        "A Django project; its demo agents are served over ACP at /acp/, and with the agent whoami,"
        " to logged-in users and holders of a token, at /acp-private/\n",
        content_type="text/plain; charset=utf-8",
    )
