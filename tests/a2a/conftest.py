"""The A2A suite's fixture ``a2a``, parametrised over every deployment of tests/a2a/deployments.py (each
started once per session); when a test fails, the end of its server's log goes into the report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from tests.a2a.deployments import A2A_DEPLOYMENTS, A2ADeployment, A2ATarget
from tests.deployments.base import log_tail


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "a2a" in metafunc.fixturenames:
        params = [pytest.param(entry, id=f"a2a-{entry.name}", marks=entry.marks) for entry in A2A_DEPLOYMENTS]
        metafunc.parametrize("a2a", params, indirect=True, scope="session")


@pytest.fixture(scope="session")
def a2a(request: pytest.FixtureRequest) -> Iterator[A2ATarget]:
    """The running deployment this test is parametrised with."""
    deployment: A2ADeployment = request.param
    with deployment.run() as started:
        yield started


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and isinstance(item, pytest.Function) and "a2a" in item.funcargs:
        started = item.funcargs["a2a"]
        if isinstance(started, A2ATarget) and started.acp.server_log is not None:
            report.sections.append((f"server log of {started.name} (tail)", log_tail(started.acp.server_log)))
    return report
