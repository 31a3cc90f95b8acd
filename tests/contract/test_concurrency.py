"""Many clients at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.deployments.base import Target
from tests.helpers import (
    TERMINAL,
    create,
    event_types,
    ok_json,
    output_texts,
    run_body,
    run_events,
    stream_events,
    wait_for,
)

CLIENTS = 50


def test_fifty_simultaneous_sync_runs(target: Target) -> None:
    agents = ("echo", "sync-echo", "gen-echo")

    def one(i: int) -> tuple[str, list[str]]:
        agent = agents[i % len(agents)]
        run = ok_json(create(target, run_body(agent, f"client {i}", f"second {i}")), 200, "Run")
        assert run["status"] == "completed", run
        assert {m["role"] for m in run["output"]} == {f"agent/{agent}"}
        return run["run_id"], output_texts(run)

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(one, range(CLIENTS)))
    assert [texts for _, texts in results] == [[f"client {i}", f"second {i}"] for i in range(CLIENTS)]
    assert len({run_id for run_id, _ in results}) == CLIENTS


def test_simultaneous_streams_and_slow_runs(target: Target) -> None:
    def stream(i: int) -> list[str]:
        events = stream_events(create(target, run_body("chunks", str(50 + i), mode="stream")))
        return [e["part"]["content"] for e in events if e["type"] == "message.part"]

    def slow(i: int) -> dict[str, Any]:
        run = ok_json(create(target, run_body("slow-echo", f"slow {i}", mode="async")), 202, "Run")
        return wait_for(target, run["run_id"], TERMINAL)

    with ThreadPoolExecutor(30) as pool:
        slow_runs = [pool.submit(slow, i) for i in range(10)]
        streams = [pool.submit(stream, i) for i in range(20)]
        for i, future in enumerate(streams):
            assert future.result() == [f"{n} " for n in range(50 + i)]
        for i, slow_run in enumerate(slow_runs):
            run = slow_run.result()
            assert run["status"] == "completed", run
            assert output_texts(run) == [f"slow {i}"]


def test_a_finished_run_has_its_final_event(target: Target) -> None:
    # Whoever sees a run's final status must find the matching event at the end of its log.
    def one(i: int) -> tuple[str, list[str]]:
        if i % 2:
            run = ok_json(create(target, run_body("awaiter")), 200, "Run")
            ok_json(target.client.request("POST", f"/runs/{run['run_id']}/cancel"), 202, "Run")
        else:
            run = ok_json(create(target, run_body("echo", mode="async")), 202, "Run")
        final = wait_for(target, run["run_id"], TERMINAL)
        return final["status"], event_types(run_events(target, run["run_id"]))

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(100)))
    gaps = [(status, types) for status, types in results if types[-1] != f"run.{status}"]
    assert not gaps, f"{len(gaps)} of {len(results)} runs ended without their final event, e.g. {gaps[0]}"
