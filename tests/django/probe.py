"""What a process holds for event streams, for the dropped-stream tests: the core's stream generators
that are still open (each is one subscription to a run's events, with its waiter in the store)."""

from __future__ import annotations

import gc
import threading
import types

from django.http import HttpRequest, JsonResponse

from acp_adapters.core.service import ACPService

# Fails loudly if the core renames its stream, rather than counting nothing.
_STREAM_CODE = ACPService._stream.__code__


def open_subscriptions() -> int:
    """How many of the core's event streams are alive and not closed in this process.

    No garbage collection first: a stream that its adapter dropped without closing must count.
    """
    return sum(
        1
        for obj in gc.get_objects()
        # type(), not isinstance(): a lazy object (request.user) must not be evaluated here.
        if type(obj) is types.AsyncGeneratorType and obj.ag_code is _STREAM_CODE and obj.ag_frame is not None
    )


def probe(request: HttpRequest) -> JsonResponse:
    """``GET /probe``: the open subscriptions and the threads of the server process."""
    return JsonResponse({"subscriptions": open_subscriptions(), "threads": threading.active_count()})
