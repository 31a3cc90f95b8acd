"""Every example of docs/testing.md, run as written: the modules (``# myproject/....py``) are loaded
as the package ``myproject``, then each test function or Django test method of the test examples
runs, time-limited. An example that stops working fails here."""

from __future__ import annotations

import inspect
import re
import sys
import types
import unittest
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from django.test import SimpleTestCase, override_settings

from tests.deployments.base import REPO_ROOT

from .conftest import LIMIT, within

DOC = REPO_ROOT / "docs" / "testing.md"
_BLOCK = re.compile(r"```python\n# (?P<path>\S+)\n(?P<code>.*?)```", re.S)
#: The examples that are modules of the user's project; the others are their tests.
_MODULES = {"myproject/agents.py", "myproject/web.py", "myproject/flask_app.py", "myproject/urls.py"}


def _blocks() -> list[tuple[str, str]]:
    return [(match["path"], match["code"]) for match in _BLOCK.finditer(DOC.read_text())]


def _load(path: str, code: str) -> types.ModuleType:
    name = path.removesuffix(".py").replace("/", ".")
    module = types.ModuleType(name)
    module.__file__ = str(DOC)
    sys.modules[name] = module
    exec(compile(code, f"{DOC}:{path}", "exec"), module.__dict__)
    return module


_loaded: dict[str, types.ModuleType] = {}


def _project() -> None:
    """The example project's modules, loaded once."""
    if _loaded:
        return
    package = types.ModuleType("myproject")
    package.__path__ = []
    sys.modules["myproject"] = package
    for path, code in _blocks():
        if path in _MODULES:
            _loaded[path] = _load(path, code)
            setattr(package, path.split("/")[1].removesuffix(".py"), _loaded[path])


def _tests() -> list[Any]:
    cases = []
    for path, code in _blocks():
        if path in _MODULES:
            continue
        for name in re.findall(r"^(?:async )?def (test_\w+)", code, re.M):
            cases.append(pytest.param(path, code, None, name, id=f"{path}::{name}"))
        for cls, body in re.findall(r"^class (\w+)\(\w+\):\n((?:    .*\n|\n)*)", code, re.M):
            for method in re.findall(r"^    (?:async )?def (test_\w+)", body, re.M):
                cases.append(pytest.param(path, code, cls, method, id=f"{path}::{cls}::{method}"))
    return cases


def test_the_page_has_the_examples_it_promises() -> None:
    paths = [path for path, _ in _blocks()]
    assert set(_MODULES) <= set(paths)
    assert len(_tests()) >= 12


@pytest.mark.parametrize(("path", "code", "cls", "name"), _tests())
def test_example(path: str, code: str, cls: str | None, name: str, request: pytest.FixtureRequest) -> None:
    _project()
    module = _load(path + ".example", code)
    if cls is None:
        function: Callable[[], Any] = getattr(module, name)
        if inspect.iscoroutinefunction(function):
            within(LIMIT, lambda: anyio.run(function))
        else:
            within(LIMIT, function)
        return
    case_class = override_settings(ROOT_URLCONF="myproject.urls")(getattr(module, cls))
    result = unittest.TestResult()
    suite = unittest.TestSuite([case_class(name)])
    if not issubclass(case_class, SimpleTestCase) or case_class.databases:
        request.getfixturevalue("django_db_setup")
        blocker = request.getfixturevalue("django_db_blocker")
        with blocker.unblock():
            within(LIMIT, lambda: suite.run(result))
    else:
        within(LIMIT, lambda: suite.run(result))
    problems = [text for _, text in result.errors + result.failures]
    assert not problems, "\n".join(problems)
    assert result.testsRun == 1
