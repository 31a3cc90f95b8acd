"""The Django example's URLs and the warm-up probe (``/probe``), which starts nothing."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from acp_adapters.django.views import all_sites
from example_django.urls import urlpatterns as example_urlpatterns
from tests.warm.probe import report


def probe(request: HttpRequest) -> JsonResponse:
    return JsonResponse(report([site._service for site in all_sites()]))


urlpatterns = [path("probe", probe), *example_urlpatterns]
