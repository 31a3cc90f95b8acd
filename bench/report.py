"""The markdown report: one table per scenario, medians with (min-max), ratios, and the targets of
issues 5 (ACP: against the frameworks' floors) and 16 (A2A: against the a2a-sdk server)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from typing import Any

from bench.stats import Summary, power_law_exponent, ratio, summarise

__all__ = ["render"]

MIB = 1024 * 1024
_ACP_SDK = "acp-sdk"
_A2A_SDK = "a2a-sdk"
_KIND_ORDER = {"adapter": 0, "floor": 1, "acp-sdk": 2, "a2a-sdk": 3}
_STREAMS = ("stream", "a2a-stream")
#: The official server each scenario's adapters are compared with.
_REFERENCE = {"a2a-send": _A2A_SDK, "a2a-stream": _A2A_SDK}


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _summary(summary: Summary | None) -> str:
    if summary is None:
        return "-"
    if summary.count == 1 or summary.low == summary.high:
        return _number(summary.median)
    return f"{_number(summary.median)} ({_number(summary.low)}-{_number(summary.high)})"


def _ratio(value: float | None, prefix: str = "") -> str:
    return "-" if value is None else f"{prefix}{value:.2f}x" if value < 10 else f"{prefix}{value:,.0f}x"


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


class _View:
    """The measurements of one run, indexed for the tables."""

    def __init__(self, results: dict[str, Any]) -> None:
        self.results = results
        self.deployments: dict[str, dict[str, Any]] = results["deployments"]
        seen = {m["deployment"] for m in results["measurements"]}
        measured = [n for n, d in self.deployments.items() if d["status"] == "measured" or n in seen]
        self.measured = sorted(measured, key=self._place)
        self.options = results["options"]

    def _place(self, name: str) -> tuple[int, int, int]:
        """Rows grouped by floor (the adapter, its floor, then acp-sdk), in the order measured."""
        names = list(self.deployments)
        d = self.deployments[name]
        group = d["floor"] if d["floor"] in self.deployments else name
        return names.index(group), _KIND_ORDER.get(d["kind"], 3), names.index(name)

    def entries(self, scenario: str, name: str, n: int | None = None) -> list[dict[str, Any]]:
        return [
            m
            for m in self.results["measurements"]
            if m["scenario"] == scenario and m["deployment"] == name and (n is None or m.get("n") == n)
        ]

    def summary(self, scenario: str, name: str, key: str, n: int | None = None) -> Summary | None:
        # A stream that failed its checks (or timed out) has no time worth showing.
        entries = self.entries(scenario, name, n)
        clean = [m for m in entries if scenario not in _STREAMS or not m.get("failures")]
        return summarise([m.get(key) for m in clean])

    def failed(self, scenario: str, name: str, n: int | None = None) -> str:
        entries = self.entries(scenario, name, n)
        failures = sum(int(m.get("failures", 0)) for m in entries)
        if not failures:
            return "0"
        attempts = failures + sum(int(m.get("ok", 0)) for m in entries if "ok" in m)
        errors = next((m["errors"][0] for m in entries if m.get("errors")), "")
        shown = f"{failures}" + (f" of {attempts}" if attempts > failures else "")
        return f"**{shown}**: {errors[:90]}"

    def noisy(self, scenario: str, name: str, n: int | None = None) -> str:
        """A mark when a measurement shown carried more foreign load than the harness accepts."""
        limit = self.options.get("max_foreign", 1.0)
        return " †" if any(m.get("foreign_cpu", 0) > limit for m in self.entries(scenario, name, n)) else ""

    def label(self, name: str) -> str:
        return str(self.deployments[name]["label"])

    def floor(self, name: str) -> str | None:
        floor: str | None = self.deployments[name]["floor"]
        return floor if floor in self.measured else None

    def ratios(self, scenario: str, name: str, key: str, n: int | None = None) -> tuple[str, str]:
        """(x floor, x the official server) of the median ``key`` (acp-sdk, or a2a-sdk for the A2A
        scenarios); a lower bound when the official server did not finish."""
        value = self.summary(scenario, name, key, n)
        floor = self.floor(name)
        to_floor = _ratio(ratio(value, self.summary(scenario, floor, key, n))) if floor else "-"
        official = _REFERENCE.get(scenario, _ACP_SDK)
        if name == official or official not in self.measured:
            return to_floor, "-"
        reference = self.summary(scenario, official, key, n)
        timed_out = [m["n"] for m in self.entries(scenario, official) if m.get("timed_out")]
        if reference is None and value is not None and n and timed_out and n >= min(timed_out):
            # The official server did not finish this N (or a smaller one): its rate is below N / timeout.
            return to_floor, _ratio(value.median * self.options["stream_timeout"] / n, "> ")
        return to_floor, _ratio(ratio(value, reference))


def _deployments(view: _View) -> list[str]:
    rows = [
        [
            f"`{name}`",
            d["label"],
            d["server"],
            f"`{d['app']}`",
            d["status"] + (f": {d['note']}" if d["note"] else ""),
        ]
        for name, d in view.deployments.items()
    ]
    return _table(["id", "deployment", "server", "app", "status"], rows)


def _load_table(view: _View, scenario: str) -> list[str]:
    header = ["deployment", "runs/s", "p50 ms", "p99 ms"]
    header += ["polls/run"] if scenario == "async" else []
    header += ["x floor", f"x {_REFERENCE.get(scenario, _ACP_SDK)}", "failed"]
    rows = []
    for name in view.measured:
        if not view.entries(scenario, name):
            continue
        row = [
            view.label(name) + view.noisy(scenario, name),
            *(_summary(view.summary(scenario, name, k)) for k in ("rate", "p50_ms", "p99_ms")),
        ]
        if scenario == "async":
            row.append(_summary(view.summary(scenario, name, "polls_per_run")))
        rows.append([*row, *view.ratios(scenario, name, "rate"), view.failed(scenario, name)])
    return _table(header, rows)


def _stream_ns(view: _View, name: str, scenario: str = "stream") -> list[int]:
    """Every N streamed by ``name`` (the harness adds smaller N for a deployment that was too slow)."""
    return sorted({int(m["n"]) for m in view.entries(scenario, name)})


def _stream_points(
    view: _View, name: str, scenario: str = "stream"
) -> tuple[list[tuple[float, float]], float | None]:
    """(N, median seconds) of the finished streams, and a lower bound on b if a larger N timed out."""
    points: list[tuple[float, float]] = []
    for n in _stream_ns(view, name, scenario):
        elapsed = view.summary(scenario, name, "elapsed", n)
        if elapsed is not None:
            points.append((n, elapsed.median))
        elif points and any(m.get("timed_out") for m in view.entries(scenario, name, n)):
            last_n, last_t = points[-1]
            return points, math.log(view.options["stream_timeout"] / last_t) / math.log(n / last_n)
    return points, None


def _exponent(view: _View, name: str, scenario: str = "stream") -> str:
    points, bound = _stream_points(view, name, scenario)
    b = power_law_exponent(points)
    if bound is not None and (b is None or bound > b):
        # A larger N did not finish in time: b is at least what finishing right at the timeout gives.
        return f"> {bound:.1f} (N = {int(points[-1][0]):,} to the first N that did not finish)"
    return "-" if b is None else f"{b:.2f}"


def _stream_table(view: _View, scenario: str = "stream") -> list[str]:
    official = _REFERENCE.get(scenario, _ACP_SDK)
    header = ["deployment", "N", "total s", "events/s", "first event ms", "x floor", f"x {official}"]
    header.append("failed")
    rows = []
    every_n = sorted({int(m["n"]) for m in view.results["measurements"] if m["scenario"] == scenario})
    for n in every_n:
        for name in view.measured:
            entries = view.entries(scenario, name, n)
            if not entries:
                continue
            if all(m.get("timed_out") for m in entries):
                timeout = _number(view.options["stream_timeout"])
                rows.append(
                    [view.label(name), f"{n:,}", f"> {timeout} (did not finish)", "-", "-", "-", "-", "-"]
                )
                continue
            figures = [
                _summary(view.summary(scenario, name, k, n)) for k in ("elapsed", "rate", "first_event_ms")
            ]
            label = view.label(name) + view.noisy(scenario, name, n)
            ratios = view.ratios(scenario, name, "rate", n)
            rows.append([label, f"{n:,}", *figures, *ratios, view.failed(scenario, name, n)])
    lines = _table(header, rows)
    growth = [
        [view.label(name), _exponent(view, name, scenario)]
        for name in view.measured
        if view.entries(scenario, name)
    ]
    return [*lines, "", *_table(["deployment", "b in t(N) ~ N^b"], growth)]


def _memory_figures(m: dict[str, Any]) -> tuple[float | None, float | None]:
    """(MiB of RSS growth per 1,000 runs, throughput over the last window / over the first)."""
    per_thousand = (m["rss_after"] - m["rss_before"]) / MIB / (m["ok"] / 1000) if m.get("ok") else None
    early, late = m.get("early_rate"), m.get("late_rate")
    return per_thousand, (late / early if early and late else None)


def _memory_summaries(view: _View, name: str) -> tuple[Summary | None, Summary | None]:
    """The MiB per 1,000 runs and the last/first throughput of every pass, summarised."""
    figures = [_memory_figures(m) for m in view.entries("memory", name)]
    return summarise([f[0] for f in figures]), summarise([f[1] for f in figures])


def _memory_row(view: _View, name: str) -> list[str] | None:
    entries = view.entries("memory", name)
    if not entries:
        return None
    growth, trend = _memory_summaries(view, name)
    early = summarise([m.get("early_rate") for m in entries])
    late = summarise([m.get("late_rate") for m in entries])
    trend_text = "-" if trend is None else _ratio(trend.median)
    if trend is not None and trend.count > 1:
        trend_text += f" ({trend.low:.2f}-{trend.high:.2f})"
    return [
        view.label(name) + view.noisy("memory", name),
        str(len(entries)),
        f"{statistics.median(m.get('ok', 0) for m in entries):,.0f}",
        _number(statistics.median(m["rss_before"] for m in entries) / MIB),
        _number(statistics.median(m["rss_after"] for m in entries) / MIB),
        _summary(growth),
        _summary(early),
        _summary(late),
        trend_text,
        view.failed("memory", name),
    ]


def _memory_table(view: _View) -> list[str]:
    w = view.options["memory_window"]
    header = ["deployment", "passes", "runs", "RSS before MiB", "RSS after MiB", "MiB per 1,000 runs",
              f"runs/s over the first {w}", f"runs/s over the last {w}", "last/first", "failed"]  # fmt: skip
    return _table(header, filter(None, (_memory_row(view, n) for n in view.measured)))


def _memory_max_table(view: _View) -> list[str]:
    header = ["deployment", "shape", "request KiB", "runs", "outcomes", "RSS before MiB", "RSS after MiB",
              "RSS peak MiB", "MiB per run kept", "failed"]  # fmt: skip
    rows = []
    for name in view.measured:
        for m in view.entries("memory-max", name):
            runs = m.get("ok", 0)
            growth = (m["rss_after"] - m["rss_before"]) / MIB
            outcomes = ", ".join(f"{count} {what}" for what, count in sorted(m.get("outcomes", {}).items()))
            rows.append([
                view.label(name), m["shape"], f"{m.get('request_bytes', 0) / 1024:,.0f}", str(runs),
                outcomes or "-", _number(m["rss_before"] / MIB), _number(m["rss_after"] / MIB),
                _number(m["rss_peak"] / MIB), _number(growth / runs) if runs else "-",
                str(m.get("failures", 0)),
            ])  # fmt: skip
    return _table(header, rows)


def _extra_us(view: _View, name: str, floor: str, scenario: str, key: str, n: int | None = None) -> str:
    """How many microseconds ``name`` adds to ``floor`` (per run for ``rate``, per event for streams)."""
    mine, base = view.summary(scenario, name, key, n), view.summary(scenario, floor, key, n)
    if mine is None or base is None:
        return "-"
    if key == "rate":  # server time per run: the inverse of throughput
        return f"{1e6 / mine.median - 1e6 / base.median:,.0f}"
    if key == "elapsed":
        return f"{(mine.median - base.median) * 1e6 / (n or 1):,.1f}"
    return f"{(mine.median - base.median) * 1000:,.0f}"  # milliseconds


def _costs(view: _View) -> list[str]:
    """What a deployment adds to its floor: per run (latency, server time) and per stream event."""
    largest = max(view.options["stream_ns"])
    rows = [
        [
            view.label(name),
            _extra_us(view, name, floor, "sync-1", "p50_ms"),
            _extra_us(view, name, floor, "sync-16", "rate"),
            _extra_us(view, name, floor, "stream", "elapsed", largest),
        ]
        for name in view.measured
        if (floor := view.floor(name)) is not None
    ]
    header = ["deployment", "extra p50 latency, 1 client (us)", "extra server time per run, 16 clients (us)",
              f"extra time per stream event, N = {largest:,} (us)"]  # fmt: skip
    return _table(header, rows)


def _targets(view: _View) -> list[str]:
    rows: list[list[str]] = []

    def target(
        what: str, value: float | None, limit: float, at_least: bool, shown: Callable[[float], str]
    ) -> None:
        holds = (
            "-"
            if value is None
            else ("yes" if (value >= limit if at_least else value <= limit) else "**no**")
        )
        rows.append([what, "-" if value is None else shown(value), holds])

    def by_ratio(scenario: str, name: str, key: str, n: int | None = None) -> float | None:
        floor = view.floor(name)
        return (
            ratio(view.summary(scenario, name, key, n), view.summary(scenario, floor, key, n))
            if floor
            else None
        )

    adapters = [n for n in view.measured if view.deployments[n]["kind"] == "adapter"]
    largest = max(view.options["stream_ns"])
    for name in adapters:
        label = view.label(name)
        clients = (1, 16) if name == "starlette" else (16,)
        for c in clients:
            if view.entries(f"sync-{c}", name):
                what = f"{label}: sync echo, {c} client{'s' if c > 1 else ''}, >= 0.5x floor"
                target(what, by_ratio(f"sync-{c}", name, "rate"), 0.5, True, "{:.2f}x".format)
        if view.entries("stream", name):
            points, bound = _stream_points(view, name)
            b = power_law_exponent(points) if bound is None else None
            target(f"{label}: stream linear, b <= 1.1", b, 1.1, False, lambda v: f"{v:.2f}")
            target(f"{label}: stream N = {largest:,}, >= 0.3x floor events/s",
                   by_ratio("stream", name, "rate", largest), 0.3, True, lambda v: f"{v:.2f}x")  # fmt: skip
        if view.entries("memory", name):
            growth, trend = _memory_summaries(view, name)
            growth_median = None if growth is None else growth.median
            trend_median = None if trend is None else trend.median
            target(f"{label}: RSS growth <= 2 MiB per 1,000 runs", growth_median, 2.0, False, "{:.2f}".format)
            target(f"{label}: late throughput >= 0.9x early", trend_median, 0.9, True, "{:.2f}x".format)

    def to_a2a_sdk(scenario: str, name: str, n: int | None = None) -> float | None:
        return ratio(view.summary(scenario, name, "rate", n), view.summary(scenario, _A2A_SDK, "rate", n))

    for name in adapters:
        label = view.label(name)
        if view.entries("a2a-send", name):
            value = to_a2a_sdk("a2a-send", name)
            target(f"{label}: A2A send >= 1x a2a-sdk (issue 16)", value, 1.0, True, "{:.2f}x".format)
        for n in _stream_ns(view, name, "a2a-stream"):
            value = to_a2a_sdk("a2a-stream", name, n)
            target(f"{label}: A2A stream N = {n:,}, events/s >= 1x a2a-sdk (issue 16)", value, 1.0, True,
                   "{:.2f}x".format)  # fmt: skip
    return _table(["target (issues 5, 16)", "measured", "holds"], rows)


def _contention(results: dict[str, Any]) -> str:
    shares = [m["foreign_cpu"] for m in results["measurements"] if "foreign_cpu" in m]
    if not shares:
        return ""
    limit = results["options"].get("max_foreign", 1.0)
    over = sum(share > limit for share in shares)
    retried = sum(m.get("attempts", 1) > 1 for m in results["measurements"])
    text = (
        f"Other programs' CPU load while measuring: median {statistics.median(shares):.0%}, "
        f"max {max(shares):.0%} of the machine; {retried} of {len(shares)} measurements were taken again "
        f"because it was over {limit:.0%}"
    )
    return text + (f", and {over} stayed over it (rows marked †)." if over else ".")


def render(results: dict[str, Any]) -> str:
    """The whole report as markdown."""
    view = _View(results)
    machine, options = results["machine"], results["options"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    lines = [
        f"Measured {machine['date']} on {machine['cpu']} ({machine['cores']} cores), "
        f"Python {machine['python']}; {versions}; acp-sdk's own virtualenv: "
        f"{machine.get('acp-sdk venv', '-')}. Pinning: {machine['pinning']}. Code: {machine['code']}.",
        "",
        f"Medians of {options['reps']} interleaved repetitions, with (min-max); load phases of "
        f"{_number(options['duration'])} s. *x floor* and *x acp-sdk* divide the deployment's median "
        "throughput (runs/s, events/s) by that of its framework's floor and of the acp-sdk server: above 1 "
        "is faster; *x a2a-sdk*, in the A2A tables, by that of the a2a-sdk server. *failed* counts wrong or "
        "missing answers (they never count as throughput).",
        "",
        _contention(results),
        "",
        "### Deployments",
        "",
        *_deployments(view),
    ]
    sections: list[tuple[str, str, Callable[[], list[str]]]] = [
        ("sync-1", "Sync echo runs, 1 client", lambda: _load_table(view, "sync-1")),
        ("sync-16", "Sync echo runs, 16 clients", lambda: _load_table(view, "sync-16")),
        ("async", "Async echo runs, created then polled until completed, 16 clients",
         lambda: _load_table(view, "async")),
        ("stream", "Stream of `chunks` (one client): total time, events/s, time to first event",
         lambda: _stream_table(view)),
        ("a2a-send", "A2A: blocking `SendMessage` of `echo` (JSON-RPC, A2A 1.0), 16 clients",
         lambda: _load_table(view, "a2a-send")),
        ("a2a-stream", "A2A: `SendStreamingMessage` of `chunks` (one client): total time, events/s, time to "
                       "first event",
         lambda: _stream_table(view, "a2a-stream")),
        ("memory", f"Memory: fresh servers, {options['memory_runs']:,} sync runs each from 16 clients "
                   "(medians of the passes)",
         lambda: _memory_table(view)),
        ("memory-max", f"Memory at the limits: a fresh server per shape, {options.get('limits_runs', 0)} "
                       "sync runs of the largest requests from 4 clients",
         lambda: _memory_max_table(view)),
    ]  # fmt: skip
    for scenario, title, table in sections:
        if any(m["scenario"] == scenario for m in results["measurements"]):
            lines += ["", f"### {title}", "", *table()]
    lines += ["", "### What each deployment adds to its floor", "", *_costs(view)]
    lines += ["", "### Targets", "", *_targets(view)]
    return "\n".join(lines) + "\n"
