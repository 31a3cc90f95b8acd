"""The example's settings with :mod:`tests.django.urls` (``/probe``), for servers started by the tests."""

from __future__ import annotations

from example_django.settings import *  # noqa: F403

ROOT_URLCONF = "tests.django.urls"
