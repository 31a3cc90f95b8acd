"""``manage.py acp_agents [--json]``: the agents of ``ACP_ADAPTERS["REGISTRY"]`` and their manifests,
as ``flask acp agents`` and ``python -m acp_adapters agents`` list them."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from acp_adapters.cli import describe_agents
from acp_adapters.django.conf import ACPConfigurationError, conf


class Command(BaseCommand):
    help = "List the agents served over ACP (ACP_ADAPTERS['REGISTRY']): one line each, or --json."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="the manifests, as GET /agents answers")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            registry = conf.registry
        except ACPConfigurationError as exc:
            raise CommandError(f"{exc.message} {exc.hint or ''}".strip()) from exc
        self.stdout.write(describe_agents(registry, as_json=options["json"]))
