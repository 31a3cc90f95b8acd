"""Which tasks ``ListTasks`` may show: an index of the runs started over A2A, kept in the store.

The store has no query over runs (docs/stores.md: nine primitives), so the A2A layer keeps its own
index with the one atomic, owner-checked append every store has: a session record whose history
holds run ids (``Store.extend_session``). There is one per agent and context (``ListTasks`` with a
``contextId``) and, for an identified caller, one per agent and owner (without). Their ids are
derived (UUID 5) from what they index; like every session, an index belongs to the owner who made
it, and lives ``run_retention`` from its last task.

Rules this module keeps:

* An index names run ids only; what a listed task is, and whether the caller may see it, is read
  from the run itself (a run that has expired is left out).
* Listing looks at the newest ``window`` tasks of an index, never more (``Settings.max_listed_tasks``).
"""

from __future__ import annotations

import json
import uuid

from acp_adapters.core.store import Store

__all__ = ["context_index", "owner_index", "record_task", "task_ids"]

#: The namespace of the index ids (fixed: an index must be found again by every process).
_NAMESPACE = uuid.UUID("5f0a2a00-7b1e-4d5c-9a3e-a2a0000d1ce5")


def context_index(agent: str, context_id: uuid.UUID) -> uuid.UUID:
    """The id of the index of ``agent``'s tasks in a context."""
    return uuid.uuid5(_NAMESPACE, f"context\n{agent}\n{context_id}")


def owner_index(agent: str, owner: str) -> uuid.UUID:
    """The id of the index of ``agent``'s tasks of an identified owner."""
    return uuid.uuid5(_NAMESPACE, f"owner\n{agent}\n{json.dumps(owner)}")


async def record_task(
    store: Store, agent: str, context_id: uuid.UUID, run_id: uuid.UUID, owner: str | None
) -> None:
    """Add a new task to the indexes it belongs to."""
    await store.extend_session(context_index(agent, context_id), [str(run_id)], owner=owner)
    if owner is not None:
        await store.extend_session(owner_index(agent, owner), [str(run_id)], owner=owner)


async def task_ids(store: Store, index: uuid.UUID, owner: str | None, window: int) -> list[str]:
    """The run ids of an index, newest first, at most ``window``; none of an index of another owner."""
    record = await store.get_session(index)
    if record is None or record.owner != owner:
        return []
    return record.history[: -window - 1 : -1]
