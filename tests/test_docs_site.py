"""The documentation site (mkdocs.yml, docs/, docs_site/) builds with ``mkdocs build --strict``: a broken
link or anchor, a page left out of the nav, an object of the API reference without a docstring or a
docstring role naming nothing fails the build, and so this test. Every page of docs/ is in the nav, and
every module of the package is either in the API reference or named here as internal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from docs_site import hooks

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIG = ROOT / "mkdocs.yml"
#: Material for MkDocs prints a notice about its successor on every build; it is no warning of ours.
QUIET = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}

#: Modules kept out of the API reference, with the reason: ``name`` is that module, ``name.*`` its
#: submodules. A module neither shown by a ``::: module`` directive in a page of docs/reference nor
#: named here fails the test.
INTERNAL = {
    "acp_adapters.__main__": "`python -m acp_adapters`, the command line of the README",
    "acp_adapters.cli": "the command line of the README",
    "acp_adapters._wsgi_environ": "private",
    "acp_adapters.bridge": "the process's event loop thread under the WSGI adapters (docs/architecture.md)",
    "acp_adapters.core": "the framework-neutral core: its public names are shown where they are exported",
    "acp_adapters.core.*": "the same (core.errors, http, service, store and executors are shown)",
    "acp_adapters.stores.redis.*": "the Redis store's modules: RedisStore is acp_adapters.stores.redis's",
    "acp_adapters.django.*": "the Django integration's modules: their public names are acp_adapters.django's",
    "acp_adapters.a2a.*": "A2A's modules: A2AService and the ASGI mount (acp_adapters.a2a.asgi) are shown",
    "acp_adapters.django.db.*": "the database store app's modules: the app and its DjangoStore are shown",
}


def _internal(module: str) -> bool:
    return module in INTERNAL or any(module.startswith(key[:-1]) for key in INTERNAL if key.endswith(".*"))


def _nav_pages(nav: Any) -> list[str]:
    """The pages named in mkdocs.yml's ``nav`` (a list of pages, ``{title: page}`` and sections)."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


def _config() -> dict[str, Any]:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert isinstance(config, dict)
    return config


def _modules() -> list[str]:
    found = []
    for path in sorted((ROOT / "acp_adapters").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_every_page_of_docs_is_in_the_nav() -> None:
    nav = _nav_pages(_config()["nav"])
    pages = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    left_out = sorted(pages - set(nav))
    assert not left_out, (
        f"{', '.join('docs/' + page for page in left_out)}: not in the site's nav. Add each page to `nav:` "
        "in mkdocs.yml, under the section it belongs to, with its title (e.g. `- Celery: celery.md`)."
    )
    unknown = sorted(set(nav) - pages - set(hooks.ROOT_PAGES))
    assert not unknown, f"mkdocs.yml's nav names pages that docs/ does not have: {unknown}"
    assert len(nav) == len(set(nav)), "a page is twice in the nav"


def test_every_module_is_in_the_api_reference_or_internal() -> None:
    shown = {
        name
        for page in (DOCS / "reference").glob("*.md")
        for name, _ in hooks.directives_of(page.read_text(encoding="utf-8"))
    }
    unplaced = [module for module in _modules() if module not in shown and not _internal(module)]
    assert not unplaced, (
        f"{unplaced}: in neither the API reference nor the list of internal modules. Add a page to "
        "docs/reference with `::: module` (and to mkdocs.yml's nav), or name the module in INTERNAL in "
        "tests/test_docs_site.py with the reason it is not public."
    )


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=QUIET,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "pip install" in home and 'href="security/"' in home  # the README, its links to docs/ rewritten
    assert 'href="changelog/"' in home
    flask = (site / "flask" / "index.html").read_text(encoding="utf-8")
    assert "<code>example_flask/app.py</code>" in flask  # a repository file: its path, no dead link
    asgi = (site / "reference" / "asgi" / "index.html").read_text(encoding="utf-8")
    assert 'id="acp_adapters.asgi.ACPApp"' in asgi
    # A docstring's role, :class:`~acp_adapters.core.service.ACPService`, links to the class's entry.
    assert 'href="../acp_adapters/#acp_adapters.ACPService"' in asgi


def test_the_strict_build_fails_on_a_broken_link_a_broken_anchor_and_a_page_out_of_the_nav(
    tmp_path: Path,
) -> None:
    """mkdocs.yml's ``validation`` block, in a site of two pages without plugins: each mistake fails."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(
        "# Home\n\n[a page](missing.md), [an anchor](other.md#nowhere), [fine](other.md#there)\n"
    )
    (docs / "other.md").write_text("# Other\n\n## There\n")
    config = {
        "site_name": "t",
        "nav": ["index.md"],
        "validation": _config()["validation"],
        "markdown_extensions": [{"toc": {"permalink": True}}],
    }
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=tmp_path,
        env=QUIET,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    # Each warning is a line, the pages out of the nav listed on the lines after theirs.
    warnings = result.stderr.split("WARNING")[1:]
    assert len(warnings) == 3, result.stderr
    assert any("'missing.md'" in warning for warning in warnings)
    assert any("'#nowhere'" in warning for warning in warnings)
    assert any('not included in the "nav"' in warning and "- other.md" in warning for warning in warnings)


PACKAGE = '''"""A package."""

__all__ = ["Base", "Child", "bare", "example", "configured"]


class Base:
    """Runs with :meth:`run`; see :class:`Child`, :func:`~docpkg.bare` and :class:`Nowhere`."""

    value: int = 1

    def run(self) -> None:
        """Runs."""

    def undocumented(self) -> None:
        pass

    def _private(self) -> None:
        pass


class Child(Base):
    """A child."""

    def run(self) -> None:
        pass


def bare() -> None:
    pass


def not_exported() -> None:
    pass


def example() -> None:
    """Use it so::

        example()

    >>> example()  # doctest: +SKIP
    'x'

    Or :func:`bare`, or :class:`TimeoutError`.
    """


def configured(x: int) -> None:
    """Configured.

    :param x: the value,
        on two lines.

    A paragraph after the fields.
    """
'''


@pytest.fixture
def docpkg(tmp_path: Path) -> Path:
    (tmp_path / "docpkg").mkdir()
    (tmp_path / "docpkg" / "__init__.py").write_text(PACKAGE)
    return tmp_path


def test_the_reference_check_finds_missing_docstrings_and_roles_naming_nothing(docpkg: Path) -> None:
    problems = hooks.reference_problems([("docpkg", {})], search_paths=[docpkg])
    assert problems == [
        "docpkg.Base: :class:`Nowhere` names nothing",
        "docpkg.Base.undocumented has no docstring",
        "docpkg.bare has no docstring",
    ]  # Child.run overrides a documented method; attributes, private and unexported names are not shown
    assert hooks.reference_problems(
        [("docpkg", {"filters": ["!^_", "!^undocumented$", "!^Base$"]}), ("docpkg.example", {})],
        search_paths=[docpkg],
    ) == ["docpkg.bare has no docstring"]
    assert hooks.reference_problems([("docpkg", {"members": ["Child"]})], search_paths=[docpkg]) == []


def test_rest_docstrings_become_markdown(docpkg: Path) -> None:
    import griffe

    extension = griffe.load_extensions(str(ROOT / "docs_site" / "rest_docstrings.py"))
    package = griffe.load("docpkg", search_paths=[str(docpkg)], extensions=extension)
    example = package["example"].docstring
    assert example is not None
    assert example.value == (
        "Use it so:\n\n```python\nexample()\n```\n\n```pycon\n>>> example()\n'x'\n```\n\n"
        'Or <autoref identifier="docpkg.bare" optional>`bare`</autoref>, or `TimeoutError`.'
    )
    configured = package["configured"].docstring
    assert configured is not None
    assert configured.value == (
        "Configured.\n\nA paragraph after the fields.\n\n:param x: the value,\n    on two lines.\n"
    )
    assert [p.name for p in configured.parse("sphinx")[1].value] == ["x"]  # parameters
    child_run = package["Child.run"].docstring
    assert child_run is not None and child_run.value == "Runs."
    base = package["Base"].docstring
    assert base is not None
    assert '<autoref identifier="docpkg.Base.run" optional>`run`</autoref>' in base.value
    assert '<autoref identifier="docpkg.Child" optional>`Child`</autoref>' in base.value


@pytest.mark.parametrize(
    ("page", "source", "link", "rewritten"),
    [
        ("index.md", "README.md", "[security](docs/security.md#limits)", "[security](security.md#limits)"),
        ("index.md", "README.md", "[changes](CHANGELOG.md)", "[changes](changelog.md)"),
        ("index.md", "README.md", "[site](https://example.org/x.md)", "[site](https://example.org/x.md)"),
        ("flask.md", None, "[example_flask/app.py](../example_flask/app.py)", "`example_flask/app.py`"),
        ("flask.md", None, "[the example](../example_flask/app.py)", "the example (`example_flask/app.py`)"),
        ("flask.md", None, "[home](../README.md#install)", "[home](index.md#install)"),
        ("reference/asgi.md", None, "[home](../../README.md)", "[home](../index.md)"),
        ("flask.md", None, "[django](django.md#settings)", "[django](django.md#settings)"),
        ("flask.md", None, "[gone](../nowhere.py)", "[gone](../nowhere.py)"),  # left for mkdocs to report
        ("flask.md", None, "```\n[x](../README.md)\n```", "```\n[x](../README.md)\n```"),  # code is code
    ],
)
def test_links_written_for_github_are_rewritten_for_the_site(
    page: str, source: str | None, link: str, rewritten: str
) -> None:
    text = f"See {link} here.\n" if not link.startswith("```") else link + "\n"
    expected = f"See {rewritten} here.\n" if not link.startswith("```") else rewritten + "\n"
    assert hooks.site_links(text, page, DOCS, ROOT / source if source else None) == expected
