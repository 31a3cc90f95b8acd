"""The official A2A JavaScript client (npm ``@a2a-js/sdk`` 1.3) against every A2A deployment, over
JSON-RPC and HTTP+JSON in A2A 1.0 and over its 0.3 compat transport: discovery, send (blocking and
not), stream, get, subscribe, cancel, input-required and its answer, contexts across tasks, list, and
errors as the client maps them.

The client is installed from the npm registry once per test session and driven by
``js/client_check.cjs``, which prints what it saw as JSON. Without Node.js and npm these tests are
skipped, unless ``ACP_REQUIRE_SERVICES`` is set (CI), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.a2a.deployments import A2ATarget
from tests.a2a.helpers import JSONRPC, REST

#: The client's version, as the Python client's is pinned in pyproject.toml.
CLIENT = "@a2a-js/sdk@1.3.0"
_SCRIPT = Path(__file__).parent / "js" / "client_check.cjs"


def _missing(reason: str) -> None:
    if os.environ.get("ACP_REQUIRE_SERVICES"):
        pytest.fail(f"{reason}, and ACP_REQUIRE_SERVICES is set", pytrace=False)
    pytest.skip(f"{reason}; set ACP_REQUIRE_SERVICES=1 to make this a failure")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        _missing(f"the JavaScript client tests need {name} (Node.js 20 or later and npm)")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def a2a_js_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node_modules folder holding the client (installed once per session)."""
    npm = _tool("npm")
    version = subprocess.run([_tool("node"), "--version"], capture_output=True, text=True, check=True).stdout
    if int(version.strip().lstrip("v").split(".")[0]) < 20:
        _missing(f"@a2a-js/sdk needs Node.js 20 or later, and node is {version.strip()}")
    folder = tmp_path_factory.mktemp("a2a-js-client")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", CLIENT],
        cwd=folder,
        check=True,
        timeout=300,
        capture_output=True,
    )
    return folder / "node_modules"


#: What the test is parametrised with: (binding, version).
_WAYS = [(JSONRPC, "1.0"), (REST, "1.0"), (JSONRPC, "0.3")]


@pytest.fixture(scope="session")
def a2a_js_drives() -> Iterator[dict[tuple[str, str, str], subprocess.Popen[str]]]:
    """The client's runs, by (A2A mount, binding, version). A deployment's first test starts the runs of
    every way at once and each test reads its own: a run spends most of its ~2.5 s waiting on slow-echo,
    and a deployment's tests follow each other (its fixture is session-scoped). What no test read (a
    ``-k`` that picked one way) is stopped at the end of the session."""
    drives: dict[tuple[str, str, str], subprocess.Popen[str]] = {}
    yield drives
    for process in drives.values():
        process.kill()
        process.communicate()


def _drive(
    a2a: A2ATarget,
    modules: Path,
    drives: dict[tuple[str, str, str], subprocess.Popen[str]],
    binding: str,
    version: str,
) -> dict[str, Any]:
    if (a2a.url, binding, version) not in drives:
        for way_binding, way_version in _WAYS:
            stale = drives.pop((a2a.url, way_binding, way_version), None)
            if stale is not None:  # unread, from an earlier server on the same port
                stale.kill()
                stale.communicate()
            drives[(a2a.url, way_binding, way_version)] = subprocess.Popen(
                [_tool("node"), str(_SCRIPT), a2a.url, way_binding, way_version],
                env={**os.environ, "NODE_PATH": str(modules)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
    process = drives.pop((a2a.url, binding, version))
    try:
        stdout, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"the client did not finish within 120 s: {stderr[-3000:]}")
    assert process.returncode == 0, stderr[-3000:]
    seen: dict[str, Any] = json.loads(stdout)
    return seen


@pytest.mark.parametrize(
    ("binding", "version"),
    [
        pytest.param(*_WAYS[0], id="jsonrpc"),
        pytest.param(*_WAYS[1], id="http-json"),
        pytest.param(*_WAYS[2], id="jsonrpc-0.3"),
    ],
)
def test_the_javascript_client_drives_every_operation(
    a2a: A2ATarget,
    a2a_js_modules: Path,
    a2a_js_drives: dict[tuple[str, str, str], subprocess.Popen[str]],
    binding: str,
    version: str,
) -> None:
    seen = _drive(a2a, a2a_js_modules, a2a_js_drives, binding, version)
    url = a2a.agent("echo")

    # Discovery: the card under the agent's URL, its interfaces, and the one the client chose.
    card = seen["card"]
    assert (card["name"], card["streaming"], card["push"], card["skills"]) == ("echo", True, False, ["echo"])
    assert card["description"]
    assert card["interfaces"] == [[JSONRPC, "1.0", url], [REST, "1.0", url], [JSONRPC, "0.3", url]]
    assert seen["client"] == [binding, version]

    # Send, blocking: the task as it ended, with the message sent in its history.
    assert seen["blocking"] == {"state": "TASK_STATE_COMPLETED", "text": "hello", "history": 1}
    # Send, returning at once: the task as created, then polled with GetTask to its end.
    assert seen["nonBlocking"] == {
        "first": "TASK_STATE_SUBMITTED",
        "then": "TASK_STATE_COMPLETED",
        "text": "later",
    }
    # Stream: the task, then working, five chunks of one artifact, completed; GetTask answers the same.
    assert seen["stream"] == {
        "first": ["task", "TASK_STATE_SUBMITTED"],
        "states": ["TASK_STATE_WORKING", "TASK_STATE_COMPLETED"],
        "text": "0 1 2 3 4 ",
        "appends": [False, True, True, True, True],
        "got": ["TASK_STATE_COMPLETED", "0 1 2 3 4 "],
    }
    # Subscribe to a running task: the task as it stands first, its final status last.
    assert seen["subscribe"] == {"first": ["task", True], "last": ["statusUpdate", "TASK_STATE_COMPLETED"]}
    # Cancel: canceled, then not cancelable.
    assert seen["cancel"] == {"state": "TASK_STATE_CANCELED", "again": "TaskNotCancelableError"}
    # Input required, answered by a message on the same task; an ended task takes no more.
    assert seen["inputRequired"] == {
        "asked": "TASK_STATE_INPUT_REQUIRED",
        "answered": "TASK_STATE_COMPLETED",
        "sameTask": True,
        "text": "received: 42",
        "again": "UnsupportedOperationError",
    }
    # A context is a session across tasks (the sessioner agent answers with its session id).
    assert seen["contexts"] == {"firstIsItsContext": True, "sameContext": True, "twoTasks": True}
    if version == "1.0":  # ListTasks is 1.0's
        listed = seen["list"]
        assert listed["ids"] == listed["expected"]
        assert (listed["totalSize"], listed["nextPageToken"]) == (2, "")
    else:
        assert "list" not in seen
    # Errors, as the client maps them back to its own error types.
    assert seen["errors"] == {"unknownTask": "TaskNotFoundError", "cancelUnknown": "TaskNotFoundError"}
