"""The Django example's settings with a URL configuration that adds the warm-up probe."""

from example_django.settings import *  # noqa: F403

ROOT_URLCONF = "tests.warm.django_urls"
