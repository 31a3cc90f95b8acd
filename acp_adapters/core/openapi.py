"""The OpenAPI document of a mount: the ACP spec's paths, with the mount's agents as an enum.

Rules this module keeps:

* The spec ships in the package as JSON (``acp-openapi.json``: ACP 0.2.0's ``openapi.yaml`` converted,
  never edited by hand; a test compares the two). It is read on first use, never at import, and needs
  no YAML parser.
* The document describes this server, so three things of the spec are corrected here, in code, each
  said where it is done: the session path's parameter is named ``name`` though the path says
  ``{session_id}``, the resume operation does not declare its ``{run_id}``, and OpenAPI 3.0's
  ``nullable: true`` (which 3.1, the spec's own version, does not know) is written as a ``null`` type.
  ``AgentName`` gets the agents' names as an ``enum`` (and the first as its example).
* The mount's own document (:func:`mount_document`) keeps the spec's paths and names the mount in
  ``servers`` (its absolute URL): a client joins the two as it does for any API. Merged into a host's
  document (:func:`with_acp_paths`, for FastAPI's ``/docs``), the paths take the mount's prefix, and the
  components, tags and operation ids an ``ACP`` prefix, so that none collides with the host's own.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

__all__ = ["acp_paths", "mount_document", "with_acp_paths"]

#: The package file holding the spec.
_SPEC_FILE = "acp-openapi.json"
#: What names the ACP parts take in a host's document.
_COMPONENT_PREFIX = "ACP"
_OPERATION_PREFIX = "acp_"
_TAG_PREFIX = "ACP "


@functools.cache
def _spec() -> dict[str, Any]:
    """The spec as shipped (read once)."""
    text = resources.files(__package__).joinpath(_SPEC_FILE).read_text(encoding="utf-8")
    spec: dict[str, Any] = json.loads(text)
    return spec


@functools.cache
def _corrected() -> dict[str, Any]:
    """The spec with its slips corrected (see the module docstring); shared: callers copy it."""
    spec: dict[str, Any] = _as_openapi_31(_spec())
    paths = spec["paths"]
    # The session path's parameter is named "name" while the path says {session_id}.
    for parameter in paths["/session/{session_id}"]["get"].get("parameters", []):
        if parameter.get("name") == "name":
            parameter["name"] = "session_id"
    # The resume operation does not declare the {run_id} of its path: the same as the GET's.
    resume = paths["/runs/{run_id}"]["post"]
    resume.setdefault("parameters", copy.deepcopy(paths["/runs/{run_id}"]["get"]["parameters"]))
    return spec


def _as_openapi_31(node: Any) -> Any:
    """``nullable: true`` (OpenAPI 3.0) as OpenAPI 3.1 writes it: ``null`` among the types, or
    ``anyOf`` with a ``null`` schema beside a reference or a ``oneOf``."""
    if isinstance(node, list):
        return [_as_openapi_31(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _as_openapi_31(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is not True:
        return out
    if isinstance(out.get("type"), str) and "$ref" not in out and "oneOf" not in out:
        out["type"] = [out["type"], "null"]
        return out
    description = out.pop("description", None)
    out = {"anyOf": [out, {"type": "null"}]}
    if description is not None:
        out["description"] = description
    return out


def _with_agents(spec: dict[str, Any], agent_names: Iterable[str]) -> dict[str, Any]:
    """A copy of ``spec`` whose ``AgentName`` lists ``agent_names`` (none: the spec's pattern alone)."""
    spec = copy.deepcopy(spec)
    names = list(agent_names)
    if names:
        agent_name = spec["components"]["schemas"]["AgentName"]
        agent_name["enum"] = names
        agent_name["example"] = names[0]
    return spec


@functools.lru_cache(maxsize=32)
def _mount_document(agent_names: tuple[str, ...], base_url: str) -> bytes:
    spec = _with_agents(_corrected(), agent_names)
    spec["servers"] = [{"url": base_url, "description": "this mount of the ACP API"}]
    return json.dumps(spec, ensure_ascii=False, separators=(",", ":")).encode()


def mount_document(agent_names: Iterable[str], base_url: str) -> bytes:
    """The OpenAPI document (JSON) of the ACP API mounted at ``base_url`` (absolute, no trailing
    slash) serving ``agent_names``. The last few documents are kept, rendered."""
    return _mount_document(tuple(agent_names), base_url)


def acp_paths(agent_names: Iterable[str], prefix: str) -> dict[str, Any]:
    """The ACP parts of a host's document for a mount at ``prefix`` (``"/acp"``; ``""``: the root):
    ``paths`` under the prefix, ``components`` and ``tags`` named with an ``ACP`` prefix."""
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    spec = _with_agents(_corrected(), agent_names)
    renamed = {
        f"#/components/{kind}/{name}": f"#/components/{kind}/{_COMPONENT_PREFIX}{name}"
        for kind, members in spec["components"].items()
        for name in members
    }
    spec = _renamed(spec, renamed)
    paths = {}
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            operation["operationId"] = _OPERATION_PREFIX + operation["operationId"]
            operation["tags"] = [_TAG_PREFIX + tag for tag in operation.get("tags", [])] or ["ACP"]
        paths[prefix + path] = operations
    components = {
        kind: {_COMPONENT_PREFIX + name: member for name, member in members.items()}
        for kind, members in spec["components"].items()
    }
    tags = [{**tag, "name": _TAG_PREFIX + tag["name"]} for tag in spec.get("tags", [])]
    return {"paths": paths, "components": components, "tags": tags}


def _renamed(node: Any, refs: Mapping[str, str]) -> Any:
    """``node`` with every ``$ref`` of ``refs`` replaced."""
    if isinstance(node, list):
        return [_renamed(item, refs) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _renamed(value, refs) for key, value in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref in refs:
        out["$ref"] = refs[ref]
    return out


def with_acp_paths(document: Mapping[str, Any], agent_names: Iterable[str], prefix: str) -> dict[str, Any]:
    """A copy of a host's OpenAPI ``document`` with the ACP paths of a mount at ``prefix`` added
    (:func:`acp_paths`); what the host's document already has at the same names is left as it is."""
    parts = acp_paths(agent_names, prefix)
    merged = dict(document)
    merged["paths"] = {**parts["paths"], **dict(document.get("paths") or {})}
    components = {kind: dict(members) for kind, members in (document.get("components") or {}).items()}
    for kind, members in parts["components"].items():
        components[kind] = {**members, **components.get(kind, {})}
    merged["components"] = components
    known = {tag.get("name") for tag in document.get("tags") or []}
    merged["tags"] = [*(document.get("tags") or []), *(t for t in parts["tags"] if t["name"] not in known)]
    return merged
