"""Parametrises the session-scoped ``target`` fixture over every deployment (see tests/deployments/base.py).

A test that takes ``target`` runs once per deployment; tests under ``tests/sdk`` (the official client)
run only against deployments with a real server. Each deployment is started once per session: pytest
groups the tests by ``target`` and finalises a deployment when its group is done. When a test fails, the
end of the deployment's server log is attached to its report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.deployments import Skipped, load
from tests.deployments.base import Deployment, Target, log_tail

_SDK_DIR = Path(__file__).parent / "sdk"


def _for_sdk(entry: Deployment | Skipped) -> bool:
    return not isinstance(entry, Skipped) and entry.real_server and entry.official_clients


def _rank(entry: Deployment | Skipped) -> int:
    if isinstance(entry, Skipped):
        return 3
    return 0 if _for_sdk(entry) else 1 if entry.real_server else 2


# The official clients' servers first: pytest groups tests by the *index* of a session-scoped
# parameter, so the list given to tests/sdk must be a prefix of the full list for a server to start once.
_DEPLOYMENTS = sorted(load(), key=_rank)


def _params(real_server_only: bool) -> list[object]:
    params: list[object] = []
    for entry in _DEPLOYMENTS:
        if isinstance(entry, Skipped):
            params.append(pytest.param(None, id=entry.module, marks=pytest.mark.skip(reason=entry.reason)))
        elif _for_sdk(entry) or not real_server_only:
            params.append(pytest.param(entry, id=entry.name, marks=entry.marks))
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" in metafunc.fixturenames:
        sdk = Path(str(metafunc.definition.path)).is_relative_to(_SDK_DIR)
        metafunc.parametrize("target", _params(real_server_only=sdk), indirect=True, scope="session")


@pytest.fixture
def anyio_backend() -> str:
    """Every async test runs on asyncio (the loop the adapters and stores run on)."""
    return "asyncio"


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The running deployment this test is parametrised with."""
    deployment: Deployment = request.param
    with deployment.start() as started:
        started.name = started.name or deployment.name
        yield started


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and isinstance(item, pytest.Function) and "target" in item.funcargs:
        started = item.funcargs["target"]
        if isinstance(started, Target) and started.server_log is not None:
            report.sections.append((f"server log of {started.name} (tail)", log_tail(started.server_log)))
    return report
