"""Read-only admin pages for the database store's runs and their events.

The engine owns these rows: the admin shows them and never writes (no add, change or delete, whatever
the user's permissions), so that a click cannot break a run that a worker is executing.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from .models import Run, RunEvent

__all__ = ["RunAdmin", "RunEventAdmin"]


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Lists and shows rows; adds, changes and deletes nothing."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _pretty(data: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(data, indent=2, ensure_ascii=False))


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ("id", "agent_name", "status", "owner", "created_at", "finished_at", "event_count")
    list_filter = ("status", "agent_name")
    search_fields = ("=id", "=session_id", "agent_name", "owner")
    date_hierarchy = "created_at"
    fields = (
        "id",
        "agent_name",
        "status",
        "owner",
        "session_id",
        "created_at",
        "updated_at",
        "finished_at",
        "worker",
        "lease_expires_at",
        "events_link",
        "log_bytes",
        "snapshot_bytes",
        "pretty_snapshot",
    )
    readonly_fields = fields

    @admin.display(description="events")
    def events_link(self, run: Run) -> str:
        # ``run`` rather than ``run__id__exact``: Django 5.0 refuses a lookup through a non-auto primary
        # key that list_filter does not name (DisallowedModelAdminLookup; 5.2 allows it again).
        url = reverse("admin:acp_adapters_runevent_changelist") + f"?run={run.pk}"
        return format_html('<a href="{}">{} events</a>', url, run.event_count)

    @admin.display(description="snapshot")
    def pretty_snapshot(self, run: Run) -> str:
        return _pretty(json.loads(run.snapshot))


@admin.register(RunEvent)
class RunEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "type", "run", "created_at")
    list_filter = ("type",)
    search_fields = ("=run__id",)
    list_select_related = ("run",)
    list_per_page = 200
    fields = ("run", "seq", "type", "created_at", "pretty_data")
    readonly_fields = fields

    @admin.display(description="data")
    def pretty_data(self, event: RunEvent) -> str:
        try:
            return _pretty(json.loads(event.data))
        except ValueError:
            return format_html("<pre>{}</pre>", event.data)
