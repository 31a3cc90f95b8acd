"""The command line: ``python -m bench [--quick] [-d starlette,acp-sdk] [-s sync-16,stream] ...``."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from bench import harness, report
from bench.deployments import DEPLOYMENTS
from bench.servers import REPO

__all__ = ["main"]

RESULTS = REPO / "bench" / "results"
DOC = REPO / "docs" / "performance.md"
_MARKERS = ("<!-- bench:table:start -->", "<!-- bench:table:end -->")


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _parser() -> argparse.ArgumentParser:
    known = "; ".join(f"{d.name}{'' if d.default else ' (on request)'}" for d in DEPLOYMENTS)
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Side-by-side ACP benchmark: the adapters, their frameworks' floors, the acp-sdk server.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 1 repetition, short phases, small N"
    )
    parser.add_argument(
        "-d", "--deployments", type=_names, default=(),
        help=f"comma-separated ids (default: every default one; floors are added as needed). Known: {known}",
    )  # fmt: skip
    parser.add_argument(
        "-s", "--scenarios", type=_names, default=harness.SCENARIOS,
        help=f"comma-separated, from {', '.join(harness.SCENARIOS)} (default: all)",
    )  # fmt: skip
    parser.add_argument("--reps", type=int, help="repetitions of each measurement (default 5, quick 1)")
    parser.add_argument("--duration", type=float, help="seconds of each load phase (default 3, quick 1)")
    parser.add_argument(
        "--stream-n", type=lambda t: tuple(int(n) for n in _names(t)), help="N values to stream"
    )
    parser.add_argument("--stream-timeout", type=float, help="seconds before a stream counts as unfinished")
    parser.add_argument(
        "--workers", type=int,
        help="worker processes of the multi-worker deployments (the shared stores', *-4w) and their floors "
        "(default 4)",
    )  # fmt: skip
    parser.add_argument("--memory-runs", type=int, help="runs of the memory scenario (default 10000)")
    parser.add_argument(
        "--memory-reps", type=int, help="fresh servers the memory scenario runs on, each (default 3, quick 1)"
    )
    parser.add_argument(
        "--limits-runs",
        type=int,
        help="runs of each shape of the memory-max scenario (default 100, quick 20)",
    )
    parser.add_argument(
        "--ref", help="measure this git revision of the adapters (e.g. HEAD) instead of the working tree"
    )
    parser.add_argument(
        "--quiet-wait", type=float, help="seconds to wait for a quiet machine before each measurement (30)"
    )
    parser.add_argument(
        "--retries", type=int, help="retakes of a measurement disturbed by other programs (2)"
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin servers and load generator to cores"
    )
    parser.add_argument(
        "--output", type=Path, help="markdown file to write (default bench/results/latest.md)"
    )
    parser.add_argument(
        "--update-docs", action="store_true", help=f"put the tables into {DOC.relative_to(REPO)}"
    )
    parser.add_argument("--list", action="store_true", help="list the deployments and exit")
    parser.add_argument("--render", type=Path, help="only render the report of a saved results JSON file")
    return parser


def _options(args: argparse.Namespace) -> harness.Options:
    unknown = sorted(set(args.scenarios) - set(harness.SCENARIOS))
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}")
    overrides = {
        "deployments": args.deployments,
        "scenarios": args.scenarios,
        "reps": args.reps,
        "duration": args.duration,
        "stream_ns": args.stream_n,
        "stream_timeout": args.stream_timeout,
        "workers": args.workers,
        "memory_runs": args.memory_runs,
        "memory_reps": args.memory_reps,
        "limits_runs": args.limits_runs,
        "pin": not args.no_pin,
        "ref": args.ref,
        "quiet_wait": args.quiet_wait,
        "retries": args.retries,
    }
    given = {k: v for k, v in overrides.items() if v is not None}
    options = harness.Options.quick(**given) if args.quick else harness.Options(**given)
    if options.reps < 1 or options.duration <= 0 or not options.stream_ns:
        raise SystemExit("--reps, --duration and --stream-n must be positive")
    if options.workers is not None and options.workers < 1:
        raise SystemExit("--workers must be positive")
    return options


def _update_docs(table: str) -> None:
    text = DOC.read_text() if DOC.exists() else f"# Performance\n\n{_MARKERS[0]}\n{_MARKERS[1]}\n"
    if _MARKERS[0] not in text:
        text += f"\n{_MARKERS[0]}\n{_MARKERS[1]}\n"
    pattern = re.compile(re.escape(_MARKERS[0]) + ".*?" + re.escape(_MARKERS[1]), re.S)
    DOC.write_text(pattern.sub(lambda _: f"{_MARKERS[0]}\n{table}{_MARKERS[1]}", text))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the markdown report and write it (and the raw JSON) to files."""
    args = _parser().parse_args(argv)
    if args.list:
        for d in DEPLOYMENTS:
            print(
                f"{d.name:20} {d.kind:8} {d.server_label:28} {d.app}{'' if d.default else '  (on request)'}"
            )
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.render:
        raw = json.loads(args.render.read_text())
        table = report.render(raw)
    else:
        results = harness.run(_options(args))
        raw = json.loads(results.to_json())
        table = report.render(raw)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        (RESULTS / f"{stamp}.json").write_text(results.to_json())
        (RESULTS / f"{stamp}.md").write_text(table)
        print(f"bench: results in {RESULTS / stamp}.json", file=sys.stderr)
    output = args.output or RESULTS / "latest.md"
    output.write_text(table)
    if args.update_docs:
        _update_docs(table)
    print(table)
    failures = sum(int(m.get("failures", 0)) for m in raw["measurements"])
    return 1 if failures else 0
