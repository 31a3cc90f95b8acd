"""The official TypeScript client (npm ``acp-sdk``) against every real server: discovery, a sync run, a
stream of 200 parts, an async run polled to its end, await and resume, cancel, a missing agent.

The client is installed from the npm registry once per test session (``npm`` must be on the PATH:
``.ci/run`` installs Node.js where it is missing) and driven by ``typescript/client_check.cjs``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deployments.base import Target

#: The client's version, as the Python client's is pinned in pyproject.toml.
CLIENT = "acp-sdk@1.0.3"
_SCRIPT = Path(__file__).parent / "typescript" / "client_check.cjs"


@pytest.fixture(scope="session")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    npm = shutil.which("npm")
    assert npm is not None, "the TypeScript client tests need Node.js and npm (apt-get install nodejs npm)"
    folder = tmp_path_factory.mktemp("typescript-client")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", CLIENT],
        cwd=folder,
        check=True,
        timeout=300,
        capture_output=True,
    )
    return folder / "node_modules"


def test_the_typescript_client_drives_every_operation(target: Target, node_modules: Path) -> None:
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run(
        [node, str(_SCRIPT), target.base_url],
        env={**os.environ, "NODE_PATH": str(node_modules)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout)
    assert "echo" in seen["agents"] and "awaiter" in seen["agents"]
    assert seen["sync"] == {"status": "completed", "text": "Hello"}
    stream = seen["stream"]
    assert (stream["first"], stream["last"], stream["parts"]) == ("run.created", "run.completed", 200)
    assert stream["text"] == "".join(f"{i} " for i in range(200))
    assert seen["async"] == "completed"
    assert seen["resume"] == {"awaited": "awaiting", "then": "completed", "text": "received: yes"}
    assert seen["cancel"] in ("cancelling", "cancelled")
    assert seen["missing"] == "not_found"
