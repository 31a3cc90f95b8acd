"""mkdocs hooks of the documentation site (mkdocs.yml names this file).

* The home page is README.md and the changelog page CHANGELOG.md, read from the repository root at
  build time: one text for GitHub and for the site.
* Links written for GitHub are rewritten for the site: ``docs/security.md`` from the README becomes the
  page ``security.md``, ``../README.md`` from a page the home page, and a link to a repository file the
  site does not carry (``../example_flask/app.py``) becomes its path as code. A link to nothing is left
  as it is: mkdocs reports it, and the strict build fails.
* The API reference is checked before the site is built: every object a ``::: name`` directive shows,
  and every public class, function and method under it, has a docstring, and no role in them names
  nothing. Each problem is a warning, so ``mkdocs build --strict`` fails on it.
"""

from __future__ import annotations

import logging
import os
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import griffe
import yaml
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.plugins.docs_site")

ROOT = Path(__file__).resolve().parent.parent
#: Repository files shown as pages of the site, by the page they become.
ROOT_PAGES = {"index.md": "README.md", "changelog.md": "CHANGELOG.md"}
#: mkdocs.yml's mkdocstrings ``filters``, which a directive's own ``filters`` replace.
DEFAULT_FILTERS = ["!^_"]
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")
_DIRECTIVE = re.compile(r"^::: +([\w.]+)\n((?:(?: {4}.*)?\n)*)", re.MULTILINE)
_EXTENSION = Path(__file__).with_name("rest_docstrings.py")


def on_files(files: Files, config: MkDocsConfig, **kwargs: Any) -> Files:
    """Adds the root pages, and reports what the API reference would show wrong."""
    for page, source in ROOT_PAGES.items():
        if files.get_file_from_path(page) is not None:
            raise ValueError(f"docs/{page} would hide {source}, which the site shows as {page}")
        files.append(File.generated(config, page, content=(ROOT / source).read_text(encoding="utf-8")))
    directives = [
        directive
        for file in files.documentation_pages()
        if file.abs_src_path is not None
        for directive in directives_of(Path(file.abs_src_path).read_text(encoding="utf-8"))
    ]
    for problem in reference_problems(directives):
        log.warning("API reference: %s", problem)
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files, **kwargs: Any) -> str:
    """Rewrites the links written for GitHub (see the module's docstring)."""
    source = ROOT_PAGES.get(page.file.src_uri)
    return site_links(markdown, page.file.src_uri, Path(config.docs_dir), ROOT / source if source else None)


def site_links(markdown: str, page: str, docs: Path, source: Path | None = None) -> str:
    """``markdown``, the text of ``page`` (its path in ``docs``), with its links rewritten for the site.
    ``source`` is the repository file a root page is read from (its links are relative to it)."""
    docs = docs.resolve()
    page_dir = (docs / page).parent
    base = source.resolve().parent if source is not None else page_dir
    out: list[str] = []
    fenced = False
    for line in markdown.splitlines(keepends=True):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        out.append(line if fenced else _LINK.sub(lambda m: _site_link(m, base, page_dir, docs), line))
    return "".join(out)


def _site_link(match: re.Match[str], base: Path, page_dir: Path, docs: Path) -> str:
    image, text, target = match.groups()
    if "://" in target or target.startswith(("#", "/", "mailto:")):
        return match[0]
    file, hash_, anchor = target.partition("#")
    path = (base / file).resolve()
    root_pages = {(ROOT / source).resolve(): docs / page for page, source in ROOT_PAGES.items()}
    if path in root_pages:
        path = root_pages[path]
    elif not path.is_relative_to(docs):
        if not path.exists() or not path.is_relative_to(ROOT):
            return match[0]  # nothing there: mkdocs reports the link
        shown = path.relative_to(ROOT).as_posix()  # a file the site does not carry: its path, as code
        return f"`{shown}`" if text.strip("`") == shown else f"{text} (`{shown}`)"
    link = os.path.relpath(path, page_dir).replace(os.sep, "/")
    return f"{image}[{text}]({link}{hash_}{anchor})"


def directives_of(markdown: str) -> list[tuple[str, dict[str, Any]]]:
    """The ``::: name`` directives of a page, each with its ``options``."""
    found = []
    for match in _DIRECTIVE.finditer(markdown + "\n"):
        block = yaml.safe_load(textwrap.dedent(match[2])) if match[2].strip() else None
        found.append((match[1], dict((block or {}).get("options") or {})))
    return found


def reference_problems(
    directives: Sequence[tuple[str, dict[str, Any]]], search_paths: Sequence[Path] = (ROOT,)
) -> list[str]:
    """What the API reference would show wrong: an object a directive shows, or a public class, function
    or method under it that the directive's ``filters`` and ``members`` let through, without a docstring
    (an attribute may have none: the reference shows its type; ``__init__`` neither: the class's
    docstring documents it), or a role in any of their docstrings naming nothing. The package is loaded
    as mkdocstrings loads it, through docs_site/rest_docstrings.py (so a method overriding a documented
    one has its docstring)."""
    problems: list[str] = []
    packages: dict[str, griffe.Object | griffe.Alias] = {}
    for name, options in directives:
        top = name.partition(".")[0]
        if top not in packages:
            packages[top] = griffe.load(
                top,
                search_paths=[str(path) for path in search_paths],
                extensions=griffe.load_extensions(str(_EXTENSION)),
                resolve_aliases=True,
            )
        obj = packages[top].modules_collection.get_member(name)
        members = options.get("members")
        _check(
            obj.final_target if isinstance(obj, griffe.Alias) else obj,
            options.get("filters", DEFAULT_FILTERS),
            None if members is None or members is True else list(members or ()),
            problems,
        )
    return problems


def _check(obj: griffe.Object, filters: list[str], members: list[str] | None, problems: list[str]) -> None:
    if not obj.is_attribute and (obj.docstring is None or not obj.docstring.value.strip()):
        problems.append(f"{obj.path} has no docstring")
    problems.extend(
        f"{obj.path}: {role} names nothing" for role in obj.extra["docs_site"].get("unresolved", ())
    )
    if not (obj.is_module or obj.is_class):
        return
    for member in obj.members.values():
        if members is not None and member.name not in members:
            continue
        if not member.is_public or not _shown(member.name, filters):
            continue
        if isinstance(member, griffe.Alias) and obj.is_class:
            continue  # assigned from elsewhere: documented where it is defined
        target = member.final_target if isinstance(member, griffe.Alias) else member
        if not target.is_module:  # a submodule has a directive of its own, if shown
            _check(target, filters, None, problems)


def _shown(name: str, filters: list[str]) -> bool:
    """Whether mkdocstrings shows a member called ``name`` (``!regex`` hides, ``regex`` keeps)."""
    hide = [f[1:] for f in filters if f.startswith("!")]
    keep = [f for f in filters if not f.startswith("!")]
    return not any(re.search(f, name) for f in hide) and (not keep or any(re.search(f, name) for f in keep))
