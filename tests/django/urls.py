"""The example's URLs and ``/probe`` (see :mod:`tests.django.probe`), for servers started by the tests."""

from __future__ import annotations

from django.urls import path

from example_django.urls import urlpatterns as example_urlpatterns
from tests.django.probe import probe

urlpatterns = [path("probe", probe), *example_urlpatterns]
