"""The official a2a-sdk 1.3 server (Starlette, JSON-RPC, A2A 1.0) doing the work of the demo ``echo`` and
``chunks`` agents, as the adapters' A2A mounts serve them.

``uvicorn bench.a2asdk_app:app``: each agent's JSON-RPC endpoint at ``/{name}`` (its card at
``/{name}/.well-known/agent-card.json``), with its own ``DefaultRequestHandler`` and in-memory task
store, as an a2a-sdk server is built. Each executor does what the acp-adapters A2A mount does for a
message: a task (submitted), working, the output as artifact updates, completed.

* ``echo``: one artifact holding the message's parts;
* ``chunks``: N artifact updates of one text part ``"0 "``, ``"1 "``... (the first opens the artifact,
  the next ones append to it), N being the message's text (default 10, at most 100,000).

a2a-sdk is a test dependency (the ``test`` extra); nothing in ``acp_adapters`` imports it.
"""

from __future__ import annotations

from a2a.helpers.proto_helpers import get_message_text, new_task_from_user_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, TaskState
from starlette.applications import Starlette
from starlette.routing import BaseRoute

__all__ = ["app"]

#: The demo ``chunks`` agent's most parts.
MOST_CHUNKS = 100_000


class _Executor(AgentExecutor):
    """Starts the message's task, works, streams its output and completes it."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.message
        assert message is not None
        task = context.current_task or new_task_from_user_message(message)
        if context.current_task is None:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.update_status(TaskState.TASK_STATE_WORKING)
        await self.work(message, updater)
        await updater.complete()

    async def work(self, message: object, updater: TaskUpdater) -> None:
        raise NotImplementedError

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError("the benchmark cancels nothing")


class Echo(_Executor):
    """Echoes the message back: one artifact holding its parts."""

    async def work(self, message: object, updater: TaskUpdater) -> None:
        await updater.add_artifact(list(message.parts))  # type: ignore[attr-defined]


class Chunks(_Executor):
    """N text parts ``"0 "``, ``"1 "``... as updates of one artifact."""

    async def work(self, message: object, updater: TaskUpdater) -> None:
        try:
            count = min(int(get_message_text(message).strip()), MOST_CHUNKS)  # type: ignore[arg-type]
        except ValueError:
            count = 10
        artifact_id = f"{updater.task_id}-0"
        for i in range(count):
            await updater.add_artifact([new_text_part(f"{i} ")], artifact_id=artifact_id, append=i > 0)


def _card(name: str, description: str) -> AgentCard:
    return AgentCard(
        name=name,
        description=description,
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=f"http://127.0.0.1/{name}", protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id=name, name=name, description=description, tags=[name])],
    )


def _agent(name: str, executor: AgentExecutor, description: str) -> list[BaseRoute]:
    card = _card(name, description)
    handler = DefaultRequestHandler(agent_executor=executor, task_store=InMemoryTaskStore(), agent_card=card)
    card_url = f"/{name}/.well-known/agent-card.json"
    return [*create_agent_card_routes(card, card_url=card_url), *create_jsonrpc_routes(handler, f"/{name}")]


app = Starlette(
    routes=[
        *_agent("echo", Echo(), "Echoes every input message back."),
        *_agent("chunks", Chunks(), 'Yields N text parts "0 ", "1 ", ...'),
    ]
)
