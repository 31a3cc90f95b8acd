"""The project's own page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        "A Django project; its demo agents are served over ACP at /acp/, and the agent whoami,"
        " for logged-in users or holders of the token, at /acp-private/\n",
        content_type="text/plain; charset=utf-8",
    )
