"""Rejoining a run's event stream (an extension of ACP): ``GET /runs/{id}/events`` asked for
``text/event-stream`` streams the run's events from after ``Last-Event-ID`` (or ``?after=N``), live or
after the run ended; a stream cut anywhere and rejoined delivers every event once, in order."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from tests.deployments.base import HttpResult, Target, parse_sse
from tests.helpers import (
    TERMINAL_EVENTS,
    acp_error,
    check_event,
    create,
    event_types,
    get_run,
    ok_json,
    resume_body,
    run_body,
    run_events,
    run_sync,
    stream_events,
)

SSE = "text/event-stream"
UNKNOWN_RUN = "3c90c3cc-0d44-4b50-8888-8dd25736052a"


def rejoin(
    target: Target, run_id: str, *, last: str | int | None = None, after: str | int | None = None
) -> HttpResult:
    """``GET /runs/{id}/events`` as an event stream, from after ``last`` (the header) or ``after``."""
    headers = {"accept": SSE}
    if last is not None:
        headers["last-event-id"] = str(last)
    query = "" if after is None else f"?after={after}"
    return target.client.request("GET", f"/runs/{run_id}/events{query}", headers=headers)


def complete_events(received: bytes) -> list[tuple[int, dict[str, Any]]]:
    """The events a client has whole from the bytes it received (a frame ends with a blank line), with
    their ids; what a cut left unfinished is not an event yet."""
    whole = received[: received.rfind(b"\n\n") + 2] if b"\n\n" in received else b""
    events, _ = parse_sse(whole)
    found = []
    for event in events:
        assert event.id is not None and event.id.isdigit(), event
        check_event(event.data)
        found.append((int(event.id), event.data))
    return found


# --- content negotiation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "*/*",
        "application/json",
        "application/json, text/event-stream",
        "text/event-stream;q=0.5, application/json",
        "text/event-stream;q=0",
        "text/html",
    ],
)
def test_without_a_preference_for_the_stream_the_events_are_the_json_list(
    target: Target, accept: str | None
) -> None:
    run = run_sync(target, "echo", "a")
    headers = {} if accept is None else {"accept": accept}
    result = target.client.request("GET", f"/runs/{run['run_id']}/events", headers=headers)
    body = ok_json(result, 200, "RunEventsListResponse")
    assert result.headers["content-type"].startswith("application/json"), result.headers
    assert body["events"] == run_events(target, run["run_id"])
    assert event_types(body["events"])[-1] == "run.completed"


@pytest.mark.parametrize("accept", [SSE, "text/event-stream, */*;q=0.1", "application/json;q=0.5, text/*"])
def test_a_finished_run_is_replayed_then_the_stream_closes(target: Target, accept: str) -> None:
    run = run_sync(target, "echo", "a", "b")
    result = target.client.request("GET", f"/runs/{run['run_id']}/events", headers={"accept": accept})
    events = stream_events(result, first_id=0)
    assert result.headers.get("run-id") == run["run_id"], result.headers
    assert events == run_events(target, run["run_id"])
    assert events[-1]["run"] == run


# --- where the stream starts ------------------------------------------------------------------------


@pytest.mark.parametrize("given_as", ["header", "query"])
def test_the_stream_starts_after_the_last_event_seen(target: Target, given_as: str) -> None:
    run = run_sync(target, "chunks", "20")
    log = run_events(target, run["run_id"])
    for last in (0, 1, 7, len(log) - 2):
        given = {"last": last} if given_as == "header" else {"after": last}
        events = stream_events(rejoin(target, run["run_id"], **given), first_id=last + 1)
        assert events == log[last + 1 :]


def test_last_event_id_wins_over_after(target: Target) -> None:
    # A browser's EventSource reconnects to the same URL (with its ?after=) and the newer header.
    run = run_sync(target, "chunks", "5")
    log = run_events(target, run["run_id"])
    events = stream_events(rejoin(target, run["run_id"], last=4, after=1), first_id=5)
    assert events == log[5:]


def test_an_empty_last_event_id_is_no_id(target: Target) -> None:
    run = run_sync(target, "echo", "a")
    events = stream_events(rejoin(target, run["run_id"], last=""), first_id=0)
    assert events == run_events(target, run["run_id"])


def test_after_the_last_event_of_an_ended_run_the_answer_is_204(target: Target) -> None:
    # A 204 tells a browser's EventSource to stop reconnecting; a stream that only closed would not.
    run = run_sync(target, "echo", "a")
    last = len(run_events(target, run["run_id"])) - 1
    for given in ({"last": last}, {"after": last}):
        result = rejoin(target, run["run_id"], **given)
        assert result.status == 204, result
        assert result.body == b"", result


# --- refusals, before any stream ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "+1", "0x1", "1e3", "1 2", "9" * 40, "beyond", "far"])
def test_a_bad_last_event_id_is_a_422_before_any_stream(target: Target, value: str) -> None:
    run = run_sync(target, "echo", "a")
    count = len(run_events(target, run["run_id"]))
    value = {"beyond": str(count), "far": str(count + 1000)}.get(value, value)
    error = acp_error(rejoin(target, run["run_id"], last=value), 422, "invalid_input")
    assert error["data"]["fields"] == ["Last-Event-ID"], error


@pytest.mark.parametrize("value", ["abc", "-1", "", "1.0", "beyond"])
def test_a_bad_after_is_a_422_before_any_stream(target: Target, value: str) -> None:
    run = run_sync(target, "echo", "a")
    count = len(run_events(target, run["run_id"]))
    value = str(count) if value == "beyond" else value
    error = acp_error(rejoin(target, run["run_id"], after=value), 422, "invalid_input")
    assert error["data"]["fields"] == ["after"], error


def test_an_unknown_run_is_404_and_a_bad_id_422(target: Target) -> None:
    acp_error(rejoin(target, UNKNOWN_RUN), 404, "not_found")
    acp_error(rejoin(target, UNKNOWN_RUN, last=0), 404, "not_found")
    acp_error(rejoin(target, "not-a-uuid"), 422, "invalid_input")


# --- live runs ----------------------------------------------------------------------------------------


def test_a_running_run_is_streamed_as_it_goes(target: Target) -> None:
    run = ok_json(create(target, run_body("slow-echo", "a", "b", mode="async")), 202, "Run")
    received = b""
    path = f"/runs/{run['run_id']}/events"
    with target.client.stream("GET", path, headers={"accept": SSE}) as answer:
        assert answer.status == 200
        assert answer.headers["content-type"].startswith(SSE), answer.headers
        for chunk in answer.chunks:
            received += chunk
            if any(data["type"] == "message.part" for _, data in complete_events(received)):
                break
        if target.client.live_streams:  # the first message came while the run went on: not buffered
            assert get_run(target, run["run_id"])["status"] == "in-progress"
        for chunk in answer.chunks:
            received += chunk
    assert [data for _, data in complete_events(received)] == run_events(target, run["run_id"])


def test_a_stream_cut_while_the_run_goes_on_is_rejoined_live(target: Target) -> None:
    received = b""
    with target.client.stream(
        "POST", "/runs", json=run_body("slow-echo", "a", "b", "c", mode="stream")
    ) as answer:
        run_id = answer.headers["run-id"]
        for chunk in answer.chunks:
            received += chunk
            if "message.completed" in event_types([data for _, data in complete_events(received)]):
                break
    first = complete_events(received)
    cut = event_types([data for _, data in first]).index("message.completed") + 1
    first = first[:cut]  # (a client that reads the whole answer first has more: it drops the rest)
    if target.client.live_streams:
        assert get_run(target, run_id)["status"] == "in-progress"
    last = first[-1][0]
    rest = stream_events(rejoin(target, run_id, last=last), first_id=last + 1)
    assert [data for _, data in first] + rest == run_events(target, run_id)


def test_a_rejoin_after_run_awaiting_waits_for_the_resume(target: Target) -> None:
    created = stream_events(create(target, run_body("awaiter", mode="stream")))
    run_id = created[-1]["run"]["run_id"]
    last = len(created) - 1
    rejoined: list[HttpResult] = []
    reader = threading.Thread(target=lambda: rejoined.append(rejoin(target, run_id, last=last)))
    reader.start()
    time.sleep(0.3)  # the reader is waiting on the awaiting run (or will find the resumed events)
    ok_json(target.client.request("POST", f"/runs/{run_id}", json=resume_body("go")), 200, "Run")
    reader.join(30)
    assert rejoined, "the rejoined stream did not end with the run"
    rest = stream_events(rejoined[0], first_id=last + 1)
    assert created + rest == run_events(target, run_id)
    assert event_types(rest)[-1] == "run.completed"


def test_resumed_streams_and_rejoins_number_one_log(target: Target) -> None:
    created = stream_events(create(target, run_body("awaiter", mode="stream")), first_id=0)
    run_id = created[-1]["run"]["run_id"]
    result = target.client.request("POST", f"/runs/{run_id}", json=resume_body("go", mode="stream"))
    resumed = stream_events(result, first_id=len(created))
    log = run_events(target, run_id)
    assert created + resumed == log
    # An ended run is replayed as its streams were: up to run.awaiting, then from there to its end.
    assert stream_events(rejoin(target, run_id), first_id=0) == created
    assert stream_events(rejoin(target, run_id, last=len(created) - 1), first_id=len(created)) == resumed
    assert stream_events(rejoin(target, run_id, last=len(created)), first_id=len(created) + 1) == resumed[1:]
    assert rejoin(target, run_id, last=len(log) - 1).status == 204


# --- cut anywhere, rejoined: every event once, in order -----------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_a_stream_cut_at_random_points_and_rejoined_delivers_every_event_once(
    target: Target, seed: int
) -> None:
    rng = random.Random(seed)
    body = run_body("chunks", "300", mode="stream")
    got: list[tuple[int, dict[str, Any]]] = []
    run_id = ""
    for attempt in range(500):
        headers = {"accept": SSE}
        if got:
            headers["last-event-id"] = str(got[-1][0])
        # The bytes this connection delivers before it drops: from 1 to 128 KiB, log-uniform, so that
        # most cuts fall among the parts and some pass message.completed (the whole message, ~45 KB).
        budget = int(2 ** rng.uniform(0, 17))
        received = b""
        if attempt == 0:
            stream = target.client.stream("POST", "/runs", json=body, headers=headers)
        else:
            stream = target.client.stream("GET", f"/runs/{run_id}/events", headers=headers)
        with stream as answer:
            assert answer.status == 200, (answer.status, b"".join(answer.chunks)[:500])
            run_id = answer.headers["run-id"]
            for chunk in answer.chunks:
                received += chunk
                if len(received) >= budget:
                    break
        got += complete_events(received[:budget])
        if got and got[-1][1]["type"] in TERMINAL_EVENTS:
            break
    else:
        pytest.fail(f"the run did not end after 500 rejoins: {event_types([d for _, d in got])[-5:]}")
    log = run_events(target, run_id)
    assert [index for index, _ in got] == list(range(len(log)))
    assert [data for _, data in got] == log
    parts = [data["part"]["content"] for _, data in got if data["type"] == "message.part"]
    assert parts == [f"{i} " for i in range(300)]
