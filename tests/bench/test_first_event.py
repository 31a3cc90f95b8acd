"""``python -m bench.first_event`` runs (its load generator's job format once changed under it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_first_event_bench_times_a_pair() -> None:
    command = [sys.executable, "-m", "bench.first_event", "-d", "starlette", "--pairs", "1", "--n", "10"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| Starlette adapter (uvicorn, 1 worker) |" in done.stdout
