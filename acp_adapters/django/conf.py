"""``settings.ACP_ADAPTERS``, read once and typed.

::

    ACP_ADAPTERS = {
        "REGISTRY": "myproject.agents.registry",  # required: an AgentRegistry, or a function returning one
        "SETTINGS": {"await_timeout": 300},       # optional: a Settings, or a dict of its fields
        "STORE": "myproject.stores.make_store",   # optional: a Store, or a function returning one (or None)
        "OWNER": "myproject.auth.acp_owner",      # optional: f(HttpRequest) -> str | None
        "GUARD": "myproject.auth.acp_guard",      # optional: f(HttpRequest) -> None, raises ACPError to deny
        "AUTHORIZE": "myproject.auth.authorize",  # optional: the core's hook, f(Request, agent) per agent
        "EXECUTOR": "myproject.celery.executor",  # optional: an Executor, or a function returning one
    }

Every value may be the object itself or its dotted path. Nothing is imported before it is needed;
each value is resolved once per process (again after ``override_settings`` in tests). A wrong value
raises :class:`ACPConfigurationError`, whose ``id`` is the one the system checks report
(``acp_adapters.E001`` ...).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, TypeVar, cast

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.http import HttpRequest
from django.utils.module_loading import import_string

from acp_adapters.core.agents import AgentRegistry
from acp_adapters.core.executors import Executor
from acp_adapters.core.service import Authorize
from acp_adapters.core.settings import Settings
from acp_adapters.core.store import Store

__all__ = [
    "KEYS",
    "ACPConf",
    "ACPConfigurationError",
    "Authorize",
    "Guard",
    "Owner",
    "StoreFactory",
    "conf",
    "missing_setting",
]

#: The caller's identity, as the host's auth established it; runs and sessions are scoped to it.
Owner = Callable[[HttpRequest], "str | None"]
#: Lets a request through by returning, denies it by raising :class:`acp_adapters.ACPError`.
Guard = Callable[[HttpRequest], None]
#: Makes a store; ``None`` from it means the in-memory default.
StoreFactory = Callable[[], "Store | None"]
T = TypeVar("T")

KEYS = ("REGISTRY", "SETTINGS", "STORE", "OWNER", "GUARD", "AUTHORIZE", "EXECUTOR")


class ACPConfigurationError(ImproperlyConfigured):
    """A wrong ``ACP_ADAPTERS``; ``id`` is the system check id that reports it."""

    def __init__(self, id: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.id = id
        self.message = message
        self.hint = hint


def _fail(id: str, message: str, hint: str | None = None) -> ACPConfigurationError:
    return ACPConfigurationError(f"acp_adapters.{id}", message, hint)


def missing_setting() -> ACPConfigurationError:
    """The error of a mount that takes its agents from ``ACP_ADAPTERS`` when the project sets none."""
    return _fail(
        "E010",
        "settings.ACP_ADAPTERS is not set, and the default ACP mount (acp_adapters.django.urls, or an "
        "ACPSite() without a registry) takes its agents from it.",
        "Add ACP_ADAPTERS = {'REGISTRY': 'mysite.agents.registry'} to settings (the dotted path of your "
        "AgentRegistry), or mount ACPSite(registry).urls instead.",
    )


def _module_named(path: str) -> ModuleType | None:
    try:
        return importlib.import_module(path)
    except ImportError:
        return None


def _registry_is_a_module(path: str, module: ModuleType) -> ACPConfigurationError:
    found = [name for name, value in vars(module).items() if isinstance(value, AgentRegistry)]
    example = f"{path}.{found[0]}" if found else "mysite.agents.registry"
    return _fail(
        "E005",
        f"ACP_ADAPTERS['REGISTRY'] must name an AgentRegistry (for example {example!r}), "
        f"{path!r} is a module.",
        f"Write 'REGISTRY': {example!r}." if found else None,
    )


class ACPConf:
    """A typed view of ``settings.ACP_ADAPTERS``; each property is resolved on first use, then kept."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}
        # WSGI threads may ask at once: a REGISTRY factory must still be called only once.
        self._lock = threading.Lock()

    def reload(self) -> None:
        """Forget what was resolved (``override_settings(ACP_ADAPTERS=...)`` calls this)."""
        with self._lock:
            self._cache.clear()

    @property
    def configured(self) -> bool:
        """Whether the project sets ``ACP_ADAPTERS`` at all."""
        return hasattr(django_settings, "ACP_ADAPTERS")

    @property
    def raw(self) -> Mapping[str, Any]:
        """``settings.ACP_ADAPTERS`` itself, checked to be a dict of known keys."""
        value = getattr(django_settings, "ACP_ADAPTERS", {})
        if not isinstance(value, Mapping):
            raise _fail("E001", f"ACP_ADAPTERS must be a dict, not {type(value).__name__}.")
        unknown = sorted(str(key) for key in value if key not in KEYS)
        if unknown:
            names = ", ".join(unknown)
            raise _fail(
                "E002", f"ACP_ADAPTERS has unknown key(s): {names}.", f"Known keys: {', '.join(KEYS)}."
            )
        return value

    @property
    def registry(self) -> AgentRegistry:
        """The agents to serve (``REGISTRY``); a factory is called once."""
        registry = self._resolved("REGISTRY", self._registry)
        assert registry is not None  # _resolved raises E003 instead
        return registry

    @property
    def settings(self) -> Settings:
        """The core's :class:`Settings` (``SETTINGS``); the defaults when absent. Unless ``SETTINGS``
        is a ``Settings`` or sets ``debug``, ``debug`` follows Django's ``DEBUG``."""
        return self._resolved("SETTINGS", self._settings) or Settings(debug=_django_debug())

    @property
    def store_factory(self) -> StoreFactory | None:
        """Makes the store of a service (``STORE``); ``None`` means the in-memory default."""
        return self._resolved("STORE", self._store_factory)

    @property
    def owner(self) -> Owner | None:
        """The owner function (``OWNER``); ``None`` means the default, the user's primary key."""
        return self._resolved("OWNER", lambda value: self._callable("OWNER", value))

    @property
    def guard(self) -> Guard | None:
        """The guard in front of the whole API (``GUARD``); ``None`` lets every request through."""
        return self._resolved("GUARD", lambda value: self._callable("GUARD", value))

    @property
    def authorize(self) -> Authorize | None:
        """The core's per-agent authorization hook (``AUTHORIZE``); ``None`` lets every request through."""
        return cast(
            "Authorize | None", self._resolved("AUTHORIZE", lambda value: self._callable("AUTHORIZE", value))
        )

    @property
    def executor(self) -> Executor | None:
        """Where the runs execute (``EXECUTOR``, e.g. a ``CeleryExecutor``); ``None``: in the process
        that creates them. A function is called once."""
        return self._resolved("EXECUTOR", self._executor)

    def problems(self) -> list[ACPConfigurationError]:
        """Every error in ``ACP_ADAPTERS`` (for the system checks), resolving what can be."""
        if not self.configured:
            return []
        try:
            _ = self.raw
        except ACPConfigurationError as exc:
            return [exc]
        found = []
        for name in ("registry", "settings", "store_factory", "owner", "guard", "authorize", "executor"):
            try:
                getattr(self, name)
            except ACPConfigurationError as exc:
                found.append(exc)
        return found

    # resolution -----------------------------------------------------------------------------------
    def _resolved(self, key: str, resolve: Callable[[Any], T]) -> T | None:
        if key in self._cache:
            return cast("T | None", self._cache[key])
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self._resolve(key, resolve)
            return cast("T | None", self._cache[key])

    def _resolve(self, key: str, resolve: Callable[[Any], T]) -> T | None:
        value = self.raw.get(key)
        if value is None and key == "REGISTRY" and not self.configured:
            raise missing_setting()
        if value is None and key == "REGISTRY":
            raise _fail(
                "E003",
                "ACP_ADAPTERS['REGISTRY'] is not set: there are no agents to serve.",
                "Set it to the dotted path of an AgentRegistry, or of a function returning one.",
            )
        return None if value is None else resolve(self._import(key, value))

    @staticmethod
    def _import(key: str, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return import_string(value)
        except ImportError as exc:
            module = _module_named(value) if key == "REGISTRY" else None
            if module is not None:
                raise _registry_is_a_module(value, module) from None
            raise _fail("E004", f"ACP_ADAPTERS[{key!r}] = {value!r} cannot be imported: {exc}") from exc

    @staticmethod
    def _registry(value: Any) -> AgentRegistry:
        if isinstance(value, ModuleType):
            raise _registry_is_a_module(value.__name__, value)
        if not isinstance(value, AgentRegistry) and callable(value):
            value = value()
        if not isinstance(value, AgentRegistry):
            raise _fail(
                "E005",
                f"ACP_ADAPTERS['REGISTRY'] must be an AgentRegistry or a function returning one, "
                f"not {type(value).__name__}.",
            )
        return value

    @staticmethod
    def _settings(value: Any) -> Settings:
        if isinstance(value, Settings):
            return value
        if not isinstance(value, Mapping):
            raise _fail(
                "E006",
                f"ACP_ADAPTERS['SETTINGS'] must be a dict or a Settings, not {type(value).__name__}.",
            )
        try:
            return Settings.from_mapping({"debug": _django_debug(), **value})
        except ValueError as exc:
            raise _fail("E006", f"ACP_ADAPTERS['SETTINGS'] is wrong: {exc}.") from exc

    @staticmethod
    def _store_factory(value: Any) -> StoreFactory:
        if isinstance(value, Store):
            instance = value
            return lambda: instance
        if isinstance(value, type) and not issubclass(value, Store):
            value = None  # a class that is not a Store: reported below
        if not callable(value):
            raise _fail(
                "E007",
                "ACP_ADAPTERS['STORE'] must be a Store, or a class or function returning one.",
            )
        factory: Callable[[], Any] = value

        def make() -> Store | None:
            store = factory()
            if store is not None and not isinstance(store, Store):
                raise _fail("E007", f"ACP_ADAPTERS['STORE'] returned {type(store).__name__}, not a Store.")
            return store

        return make

    @staticmethod
    def _executor(value: Any) -> Executor | None:
        if not isinstance(value, Executor) and callable(value):
            value = value()
        if value is not None and not isinstance(value, Executor):
            raise _fail(
                "E012",
                "ACP_ADAPTERS['EXECUTOR'] must be an Executor (CeleryExecutor(celery_app) from "
                f"acp_adapters.celery), or a function returning one or None, not {type(value).__name__}.",
            )
        return value

    @staticmethod
    def _callable(key: str, value: Any) -> Callable[[HttpRequest], Any]:
        if not callable(value):
            raise _fail("E008", f"ACP_ADAPTERS[{key!r}] must be a function, not {value!r}.")
        return cast("Callable[[HttpRequest], Any]", value)


#: The project's ACP configuration.
conf = ACPConf()


def _django_debug() -> bool:
    return getattr(django_settings, "DEBUG", False) is True


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in ("ACP_ADAPTERS", "DEBUG"):
        conf.reload()


setting_changed.connect(_reload)
