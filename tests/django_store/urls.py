"""URLs of the database-store tests: the admin site (where the store's read-only pages are)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
