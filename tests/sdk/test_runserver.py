"""The official client against Django's development server (``manage.py runserver``).

``runserver`` is wsgiref's server, which sets ``CONTENT_TYPE: text/plain`` on a request that has no
type, and the official Python client sends its POST bodies with none: that ``text/plain`` must not be
taken as a declared type (415).
"""

from __future__ import annotations

import pytest
from acp_sdk.client import Client
from acp_sdk.models import Message, MessagePart, RunStatus

from tests.deployments.base import serve
from tests.deployments.django import SETTINGS_MODULE

pytestmark = [pytest.mark.anyio, pytest.mark.django, pytest.mark.slow]


async def test_the_official_client_runs_an_agent_under_runserver() -> None:
    command = ["{python}", "-m", "django", "runserver", "--noreload", "{host}:{port}"]
    with serve(command, env={"DJANGO_SETTINGS_MODULE": SETTINGS_MODULE}, name="django-runserver") as target:
        async with Client(base_url=target.base_url, timeout=30) as client:
            run = await client.run_sync([Message(parts=[MessagePart(content="hi")])], agent="echo")
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.output[0].parts[0].content == "hi"
