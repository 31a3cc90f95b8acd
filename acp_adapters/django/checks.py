"""System checks of ``settings.ACP_ADAPTERS`` and of the ACP mounts in the URLconf, run by
``manage.py check``, ``runserver`` and ``migrate``.

Ids are stable:

* ``acp_adapters.E001``: ``ACP_ADAPTERS`` is not a dict;
* ``acp_adapters.E002``: it has an unknown key;
* ``acp_adapters.E003``: ``REGISTRY`` is missing;
* ``acp_adapters.E004``: a dotted path cannot be imported;
* ``acp_adapters.E005``: ``REGISTRY`` is not an ``AgentRegistry`` (nor a function returning one), e.g.
  it names the module that holds the registry;
* ``acp_adapters.E006``: ``SETTINGS`` is not a ``Settings`` or a dict of its fields, or a field is wrong;
* ``acp_adapters.E007``: ``STORE`` is not a ``Store`` (nor a class or function returning one);
* ``acp_adapters.E008``: ``OWNER``, ``GUARD`` or ``AUTHORIZE`` is not callable;
* ``acp_adapters.E009``: a mount is included under a prefix without a trailing slash
  (``path("acp", include(...))`` would serve ``/acpagents``);
* ``acp_adapters.E010``: there is no ``ACP_ADAPTERS`` setting, and a mount takes its agents from it;
* ``acp_adapters.E011``: ``STORE`` is the database store, and its app (``acp_adapters.django.db``) is
  not in ``INSTALLED_APPS``;
* ``acp_adapters.E012``: ``EXECUTOR`` is not an ``Executor`` (nor a function returning one or ``None``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from django.apps import AppConfig, apps
from django.core.checks import CheckMessage, Error, Tags, register
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.module_loading import import_string

from .conf import conf, missing_setting

if TYPE_CHECKING:
    from .views import ACPSite

__all__ = ["check_mounts", "check_settings"]


@register()
def check_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Report each wrong value of ``settings.ACP_ADAPTERS``."""
    found: list[CheckMessage] = [
        Error(problem.message, hint=problem.hint, id=problem.id) for problem in conf.problems()
    ]
    if not found and _names_the_database_store():
        from .db.store import DATABASE_APP, DATABASE_APP_MISSING

        if not apps.is_installed(DATABASE_APP):
            found.append(Error(DATABASE_APP_MISSING, id="acp_adapters.E011"))
    return found


def _names_the_database_store() -> bool:
    """Whether ``STORE`` is the database store (its class, a subclass or an instance)."""
    if not conf.configured:
        return False
    value = conf.raw.get("STORE")
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError:
            return False
    from .db.store import DjangoStore

    return isinstance(value, DjangoStore) or (isinstance(value, type) and issubclass(value, DjangoStore))


@register(Tags.urls)
def check_mounts(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Report each ACP mount of the root URLconf whose prefix lacks its trailing slash, and a mount
    that takes its agents from ``ACP_ADAPTERS`` when there is none."""
    try:
        patterns = get_resolver().url_patterns
    except Exception:  # a broken URLconf: Django's own URL checks report it
        return []
    found: list[CheckMessage] = []
    needs_setting = False
    for prefixes, site in _mounts(patterns, []):
        needs_setting = needs_setting or site.takes_registry_from_settings
        unslashed = [prefix for prefix in prefixes if prefix and not prefix.endswith("/")]
        if unslashed:
            mount = "/" + "".join(prefixes)
            meant = "/" + "".join(prefix if prefix.endswith("/") else prefix + "/" for prefix in prefixes)
            fixed = unslashed[-1] + "/"
            found.append(
                Error(
                    f"The ACP mount {site.name!r} is included at {mount!r}, without a trailing slash: "
                    f"it would serve {mount}agents instead of {meant}agents.",
                    hint=f"Write path({fixed!r}, ...) instead of path({unslashed[-1]!r}, ...).",
                    id="acp_adapters.E009",
                )
            )
    if needs_setting and not conf.configured:
        problem = missing_setting()
        found.append(Error(problem.message, hint=problem.hint, id=problem.id))
    return found


def _mounts(patterns: Sequence[Any], prefixes: list[str]) -> Iterator[tuple[list[str], ACPSite]]:
    """Each ACP mount under ``patterns``, with the prefixes of the includes that lead to it."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            try:
                children = pattern.url_patterns
            except Exception:  # a broken include: Django's own URL checks report it
                continue
            yield from _mounts(children, [*prefixes, _prefix_of(pattern.pattern)])
        elif isinstance(pattern, URLPattern):
            site = getattr(pattern.callback, "acp_site", None)
            if site is not None:
                yield prefixes, site


def _prefix_of(pattern: Any) -> str:
    """The text of an include's pattern (``"acp/"`` of a route, ``"acp/"`` of ``r"^acp/"``); a locale
    prefix, which always ends with a slash, is empty here."""
    route = getattr(pattern, "_route", None)
    if isinstance(route, str):
        return route
    regex = getattr(pattern, "_regex", None)
    if isinstance(regex, str):
        return regex.removeprefix("^")
    return ""
