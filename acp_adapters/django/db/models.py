"""Tables of the database store (:class:`acp_adapters.django.db.store.DjangoStore`).

Rules this module keeps:

* A run is one row, small and updated in place (its snapshot as JSON plus the columns the store
  filters on); its events are rows of their own, one each, numbered from 0 by ``seq``, never rewritten.
* Counters on the run row (``event_count``, ``signal_count``, ``version``) are what other workers poll
  and what compare-and-set compares: one indexed row tells whether anything changed.
* Every owner column is ``NULL`` for "no owner" (anonymous), never ``""``: the service maps an empty
  owner to ``None`` before the store sees it, and a nullable column gives ``None`` back as ``None``.
* Byte counts (``log_bytes``, ``snapshot_bytes``, ``size``) are kept by the writes that change what
  they count, so that bounding the store by bytes (``max_retained_bytes``) costs no query per write.
* Nothing here has behaviour: :mod:`acp_adapters.django.db.store` decides what is written.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import models

__all__ = ["IdempotencyKey", "Resource", "Run", "RunEvent", "RunSignal", "Session", "SessionHistoryEntry"]


class Run(models.Model):
    """A run of an agent: its latest snapshot and who executes it."""

    id: models.UUIDField[uuid.UUID, uuid.UUID] = models.UUIDField(primary_key=True, editable=False)
    agent_name: models.CharField[str, str] = models.CharField(max_length=63)
    session_id: models.UUIDField[uuid.UUID | None, uuid.UUID | None] = models.UUIDField(
        null=True, blank=True, db_index=True
    )
    status: models.CharField[str, str] = models.CharField(max_length=16)
    owner: models.CharField[str | None, str | None] = models.CharField(max_length=255, null=True, blank=True)
    #: The ``Run`` as the API shows it, as JSON text (not ``jsonb``, which refuses the ``\u0000`` that a
    #: message may hold).
    snapshot: models.TextField[str, str] = models.TextField()
    #: Bumped by every snapshot change: the compare of compare-and-set.
    version: models.PositiveIntegerField[int, int] = models.PositiveIntegerField(default=0)
    #: How many events the run has (the next event's ``seq``).
    event_count: models.PositiveIntegerField[int, int] = models.PositiveIntegerField(default=0)
    #: Bytes of the run's events (their JSON), raised by every append.
    log_bytes: models.PositiveBigIntegerField[int, int] = models.PositiveBigIntegerField(default=0)
    #: Bytes of ``snapshot``, set with it.
    snapshot_bytes: models.PositiveBigIntegerField[int, int] = models.PositiveBigIntegerField(default=0)
    #: How many signals were ever sent to the run (waiters compare it with what they saw).
    signal_count: models.PositiveIntegerField[int, int] = models.PositiveIntegerField(default=0)
    #: Whether a process other than the one that executes the run waits for its events: only then do
    #: appends announce themselves with NOTIFY (the executing process wakes its own readers).
    watched: models.BooleanField[bool, bool] = models.BooleanField(default=False)
    #: The process that renewed the lease last (``host:pid``): where the run executes.
    worker: models.CharField[str, str] = models.CharField(max_length=255, blank=True, default="")
    #: Until when the executing worker vouches for the run; later, the run is lost.
    lease_expires_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True
    )
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField()
    updated_at: models.DateTimeField[datetime, datetime] = models.DateTimeField()
    #: When the run ended; ``retention`` seconds later it is gone for the API and ``acp_purge`` deletes it.
    finished_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True, db_index=True
    )

    class Meta:
        app_label = "acp_adapters"  # the label of acp_adapters.django.db, the tables' prefix
        verbose_name = "ACP run"
        verbose_name_plural = "ACP runs"
        ordering = ("-created_at",)
        indexes = (models.Index(fields=("status", "lease_expires_at"), name="acp_run_status_lease"),)

    def __str__(self) -> str:
        return f"{self.agent_name} run {self.id} ({self.status})"


class RunEvent(models.Model):
    """One event of a run's log, as the JSON that was emitted."""

    run: models.ForeignKey[Run] = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    seq: models.PositiveIntegerField[int, int] = models.PositiveIntegerField()
    type: models.CharField[str, str] = models.CharField(max_length=32)
    #: The event's JSON, byte for byte as it was emitted (text keeps it readable in the admin).
    data: models.TextField[str, str] = models.TextField()
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField()

    class Meta:
        app_label = "acp_adapters"  # the label of acp_adapters.django.db, the tables' prefix
        verbose_name = "ACP run event"
        verbose_name_plural = "ACP run events"
        ordering = ("run", "seq")
        constraints = (models.UniqueConstraint(fields=("run", "seq"), name="acp_event_run_seq"),)

    def __str__(self) -> str:
        return f"#{self.seq} {self.type}"


class RunSignal(models.Model):
    """A cancel or resume waiting for the worker that executes the run; deleted when taken."""

    run: models.ForeignKey[Run] = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="signals")
    run_id: uuid.UUID
    kind: models.CharField[str, str] = models.CharField(max_length=8)
    payload: models.BinaryField[bytes, bytes | memoryview] = models.BinaryField(default=b"")
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField()

    class Meta:
        app_label = "acp_adapters"  # the label of acp_adapters.django.db, the tables' prefix
        verbose_name = "ACP run signal"
        ordering = ("id",)

    def __str__(self) -> str:
        return f"{self.kind} for run {self.run_id}"


class Session(models.Model):
    """A session: its state URL; its history is in :class:`SessionHistoryEntry`."""

    id: models.UUIDField[uuid.UUID, uuid.UUID] = models.UUIDField(primary_key=True, editable=False)
    state: models.TextField[str | None, str | None] = models.TextField(null=True, blank=True)
    owner: models.CharField[str | None, str | None] = models.CharField(max_length=255, null=True, blank=True)
    #: How many history entries the session has (the next entry's ``position``).
    history_length: models.PositiveIntegerField[int, int] = models.PositiveIntegerField(default=0)
    #: Bytes of the history URLs and the state URL.
    size: models.PositiveBigIntegerField[int, int] = models.PositiveBigIntegerField(default=0)
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField()
    #: The last change; ``session_retention`` seconds later the session expires.
    updated_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(db_index=True)

    class Meta:
        app_label = "acp_adapters"  # the label of acp_adapters.django.db, the tables' prefix
        verbose_name = "ACP session"
        verbose_name_plural = "ACP sessions"

    def __str__(self) -> str:
        return f"session {self.id}"


class SessionHistoryEntry(models.Model):
    """One message URL of a session's history, at its position."""

    session: models.ForeignKey[Session] = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="entries"
    )
    position: models.PositiveIntegerField[int, int] = models.PositiveIntegerField()
    url: models.TextField[str, str] = models.TextField()

    class Meta:
        app_label = "acp_adapters"  # the label of acp_adapters.django.db, the tables' prefix
        verbose_name = "ACP session history entry"
        verbose_name_plural = "ACP session history entries"
        ordering = ("session", "position")
        constraints = (models.UniqueConstraint(fields=("session", "position"), name="acp_history_position"),)

    def __str__(self) -> str:
        return f"#{self.position} {self.url}"


class Resource(models.Model):
    """A resource this server serves: a history message or a session state blob."""

    id: models.UUIDField[uuid.UUID, uuid.UUID] = models.UUIDField(primary_key=True, editable=False)
    data: models.BinaryField[bytes, bytes | memoryview] = models.BinaryField()
    owner: models.CharField[str | None, str | None] = models.CharField(max_length=255, null=True, blank=True)
    #: Bytes of ``data``.
    size: models.PositiveBigIntegerField[int, int] = models.PositiveBigIntegerField(default=0)
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField()
    #: The last time a session named it in its history; ``session_retention`` seconds later it expires.
    touched_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(db_index=True)

    class Meta:
        app_label = "acp_adapters"  # the label of acp_adapters.django.db, the tables' prefix
        verbose_name = "ACP resource"
        verbose_name_plural = "ACP resources"

    def __str__(self) -> str:
        return f"resource {self.id}"


class IdempotencyKey(models.Model):
    """A key held until ``expires_at`` and the value stored with it (``Idempotency-Key``: the run)."""

    #: The SHA-256 of the key, in hex: any key fits the column, and the index stays small.
    id: models.CharField[str, str] = models.CharField(primary_key=True, max_length=64, editable=False)
    value: models.BinaryField[bytes, bytes | memoryview] = models.BinaryField()
    expires_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(db_index=True)

    class Meta:
        app_label = "acp_adapters"  # the label of acp_adapters.django.db, the tables' prefix
        verbose_name = "ACP idempotency key"
        verbose_name_plural = "ACP idempotency keys"

    def __str__(self) -> str:
        return f"key {self.id[:12]}"
