"""System checks of ``settings.ACP_ADAPTERS``, run by ``manage.py check``, ``runserver`` and ``migrate``.

Ids are stable:

* ``acp_adapters.E001``: ``ACP_ADAPTERS`` is not a dict;
* ``acp_adapters.E002``: it has an unknown key;
* ``acp_adapters.E003``: ``REGISTRY`` is missing;
* ``acp_adapters.E004``: a dotted path cannot be imported;
* ``acp_adapters.E005``: ``REGISTRY`` is not an ``AgentRegistry`` (nor a function returning one);
* ``acp_adapters.E006``: ``SETTINGS`` is not a ``Settings`` or a dict of its fields, or a field is wrong;
* ``acp_adapters.E007``: ``STORE`` is not a ``Store`` (nor a class or function returning one);
* ``acp_adapters.E008``: ``OWNER``, ``GUARD`` or ``AUTHORIZE`` is not callable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, register

from .conf import conf

__all__ = ["check_settings"]


@register()
def check_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Report each wrong value of ``settings.ACP_ADAPTERS``."""
    return [Error(problem.message, hint=problem.hint, id=problem.id) for problem in conf.problems()]
