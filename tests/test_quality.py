"""The package is ruff-clean, formatted and passes mypy --strict (it ships py.typed); so do the tests
in _TYPED_TESTS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The part of the tests type-checked like the package, with django-cors-headers' strict extras on top
#: (the modules they import are followed but reported by their own check). The rest of tests/ is not yet.
_TYPED_TESTS = [
    "tests/conftest.py",
    "tests/helpers.py",
    "tests/contract",
    "tests/deployments",
    "tests/engine",
]
_TYPED_TESTS_FLAGS = [
    "--strict",
    "--warn-unreachable",
    "--enable-error-code=ignore-without-code",
    "--enable-error-code=redundant-expr",
    "--enable-error-code=truthy-bool",
    "--follow-imports=silent",
]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy", "acp_adapters"],
        ["mypy", *_TYPED_TESTS_FLAGS, *_TYPED_TESTS],
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
        "bad = {'starlette', 'flask', 'django', 'redis', 'psycopg', 'httpx'} & set(sys.modules);"
        "print(sorted(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
