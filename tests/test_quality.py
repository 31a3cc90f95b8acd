"""The package is ruff-clean, formatted and passes mypy --strict (it ships py.typed); so do the tests and
the benchmark, with the extras pyproject.toml adds for them (warn_unreachable, and the error codes
ignore-without-code, redundant-expr and truthy-bool that django-cors-headers enables)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy", "acp_adapters"],
        ["mypy", "tests", "bench"],
    ],
    ids=["ruff-check", "ruff-format", "mypy-strict", "mypy-tests"],
)
def test_code_quality(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_core_imports_no_web_framework() -> None:
    code = (
        "import sys, acp_adapters, acp_adapters.core.service, acp_adapters.asgi;"
        "bad = {'starlette', 'flask', 'django', 'redis', 'psycopg', 'httpx', 'opentelemetry'};"
        "bad &= {name.split('.')[0] for name in sys.modules};"
        "print(sorted(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
