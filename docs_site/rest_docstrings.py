"""A Griffe extension: the package's reST-style docstrings, rewritten into the Markdown mkdocstrings renders.

The docstrings are written for readers of the source, with Sphinx's habits: roles (``:class:`Settings```,
``:meth:`~Store.write_run```), ``::`` literal blocks and ``>>>`` examples. Once the package is loaded,
before mkdocstrings parses them (``docstring_style: sphinx`` reads the ``:param x:`` fields), this
extension

* gives a method without a docstring the docstring of the method it overrides (``RedisStore.get_run``
  documents what ``Store.get_run`` promises), as ``inspect.getdoc`` does;
* turns a role into a cross-reference to the object it names, resolved from where the docstring is as
  Sphinx resolves it (the object's scope, its classes' inherited members, then its parents'; then the one
  object of the package with that name; ``~`` shows the last name only; a leading ``.`` is relative to
  the package). It links when the object is on the site and shows as code when it is not (an internal
  module). A role that names nothing is recorded in ``obj.extra["docs_site"]["unresolved"]``: the site's
  hooks (docs_site/hooks.py) report those of the objects the site shows, which fails the strict build;
* moves the ``:param x:`` fields after the prose (Griffe's Sphinx parser would make a paragraph that
  follows them part of the last field's description);
* turns a paragraph ending in ``::`` and the indented block after it into a fenced code block, and
  ``>>>`` examples (their ``...`` lines and output too) into a ``pycon`` block, ``# doctest:`` comments
  dropped.
"""

from __future__ import annotations

import builtins
import contextlib
import re
import textwrap
from collections import defaultdict
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj):`(~?)([^`<>]+)`")
_FIELD = re.compile(
    r":(?:param|parameter|arg|argument|key|keyword|type|raises?|except|exception|returns?|rtype|var|ivar)\b[^:]*:"
)
_DOCTEST_COMMENT = re.compile(r"\s*#\s*doctest:.*$")


class ReSTDocstrings(griffe.Extension):
    """Rewrites every docstring of a package once the whole package is loaded (a role may name an
    object of another module)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        objects = _objects(pkg)
        by_name: dict[str, list[str]] = defaultdict(list)
        for obj in objects:
            by_name[obj.name].append(obj.path)
        for obj in objects:
            if obj.docstring is None and obj.is_function and isinstance(obj.parent, griffe.Class):
                obj.docstring = _overridden_docstring(obj, obj.parent)
        for obj in objects:
            if obj.docstring is not None:
                unresolved: list[str] = []
                obj.docstring.value = rewrite(obj.docstring.value, obj, by_name, unresolved)
                if unresolved:
                    obj.extra["docs_site"]["unresolved"] = unresolved


def _objects(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if isinstance(member, griffe.Object):  # not an alias (an import)
            found.extend(_objects(member))
    return found


def _overridden_docstring(method: griffe.Object, cls: griffe.Class) -> griffe.Docstring | None:
    """The docstring of the method ``method`` overrides in a base of its class ``cls``, if any."""
    try:
        bases = cls.mro()
    except (ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    for base in bases:
        overridden = base.members.get(method.name)
        if isinstance(overridden, griffe.Object) and overridden.docstring is not None:
            return griffe.Docstring(overridden.docstring.value, parent=method)
    return None


def rewrite(text: str, obj: griffe.Object, by_name: dict[str, list[str]], unresolved: list[str]) -> str:
    """``text``, the docstring of ``obj``, in Markdown (see the module's docstring); the roles naming
    nothing are added to ``unresolved``."""
    out: list[str] = []
    fenced = False
    for line in _fence_literal_blocks(_fence_examples(_fields_last(text.splitlines()))):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        out.append(line if fenced else _ROLE.sub(lambda m: _reference(m, obj, by_name, unresolved), line))
    return "\n".join(out)


def _reference(
    match: re.Match[str], obj: griffe.Object, by_name: dict[str, list[str]], unresolved: list[str]
) -> str:
    short, name = match[1] == "~", match[2].strip()
    title = name.rsplit(".", 1)[-1] if short else name.lstrip(".")
    package = obj.package.path
    path = _resolve(name, obj, by_name)
    if path is None:
        unresolved.append(match[0])
        return f"`{title}`"
    if not path.startswith(f"{package}."):
        return f"`{title}`"  # a builtin or another library's object: no page of ours to link to
    return f'<autoref identifier="{path}" optional>`{title}`</autoref>'


def _resolve(name: str, obj: griffe.Object, by_name: dict[str, list[str]]) -> str | None:
    """The path of what ``name`` refers to from ``obj``'s docstring: an object of the package, a builtin
    or another library's dotted name (not checked), or ``None`` for nothing."""
    package = obj.package.path
    if name.startswith("."):
        module = obj.module
        base = module if module.is_init_module or module.parent is None else module.parent
        return _existing(f"{base.path}{name}", obj)
    first, _, rest = name.partition(".")
    scope: griffe.Object | None = obj
    while scope is not None:
        members: dict[str, Any] = dict(scope.members)
        if isinstance(scope, griffe.Class):
            with contextlib.suppress(ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                members = {**scope.inherited_members, **members}
        if first in members:
            member = members[first]
            target = member.target_path if member.is_alias else member.path
            return _existing(f"{target}.{rest}" if rest else target, obj)
        scope = scope.parent
    if first == package:
        return _existing(name, obj)
    if hasattr(builtins, first) or "." in name:
        return name  # TimeoutError, asyncio.Task
    candidates = by_name.get(first, [])
    if len(candidates) == 1:
        return _existing(f"{candidates[0]}.{rest}" if rest else candidates[0], obj)
    return None


def _existing(path: str, obj: griffe.Object) -> str | None:
    if not path.startswith(f"{obj.package.path}.") and path != obj.package.path:
        return path  # imported from another library
    try:
        obj.modules_collection.get_member(path)
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    return path


def _fields_last(lines: list[str]) -> list[str]:
    """The ``:param x:`` fields (and their indented lines) after the prose: Griffe's Sphinx parser would
    make a paragraph that follows them part of the last field."""
    prose: list[str] = []
    fields: list[str] = []
    in_field = False
    for line in lines:
        if _FIELD.match(line):
            in_field = True
        elif in_field and line.strip() and not line[:1].isspace():
            in_field = False
        (fields if in_field else prose).append(line)
    if not fields:
        return lines
    while prose and not prose[-1].strip():
        prose.pop()
    return [*prose, "", *fields]


def _fence_examples(lines: list[str]) -> list[str]:
    """``>>>`` examples (with their ``...`` and output lines, up to a blank line) in ``pycon`` fences."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not lines[i].lstrip().startswith(">>>"):
            out.append(lines[i])
            i += 1
            continue
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        block: list[str] = []
        while i < len(lines) and lines[i].strip():
            block.append(_DOCTEST_COMMENT.sub("", lines[i].removeprefix(indent)).rstrip())
            i += 1
        out.extend([f"{indent}```pycon", *(f"{indent}{line}" for line in block), f"{indent}```"])
    return out


def _fence_literal_blocks(lines: list[str]) -> list[str]:
    """reST literal blocks (a line ending in ``::``, then an indented block) in fences."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.rstrip().endswith("::") or line.lstrip().startswith("```"):
            out.append(line)
            continue
        text = line.rstrip()[:-2].rstrip()
        if text.strip():
            out.append(text + ":")
        indent = len(line) - len(line.lstrip())
        body: list[str] = []
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            body.append(lines[i])
            i += 1
        pad = " " * indent
        code = textwrap.dedent("\n".join(body)).strip("\n").splitlines()
        out.extend(["", f"{pad}```python", *(pad + row for row in code), f"{pad}```", ""])
    return out
