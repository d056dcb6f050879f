"""The wire protocol is defined once (coflux/protocol.py): what the server sends matches it, every
operation it names is served, and the front-end's generated copy is current."""

from __future__ import annotations

import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Server, Worker

from coflux import protocol

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "jupyter_ext" / "frontend" / "scripts" / "gen_protocol.py"
WORKSPACE = "protocol"


def _conforms(value: typing.Any, hint: typing.Any) -> bool:
    """Whether a JSON value fits a protocol type hint (ints count as floats, as JSON has one number)."""
    origin = typing.get_origin(hint)
    if hint is typing.Any:
        return True
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint in (str, int, bool):
        return isinstance(value, hint) and (hint is bool or not isinstance(value, bool))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, __import__("types").UnionType):
        return any(_conforms(value, arg) for arg in typing.get_args(hint))
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_conforms(v, item) for v in value)
    if origin is dict:
        _, item = typing.get_args(hint)
        return isinstance(value, dict) and all(isinstance(k, str) and _conforms(v, item) for k, v in value.items())
    if typing.is_typeddict(hint):
        return not _problems(value, hint)
    raise TypeError(hint)


def _problems(event: dict, cls: type) -> list[str]:
    hints = typing.get_type_hints(cls)
    problems = [f"missing {key!r}" for key in cls.__required_keys__ if key not in event]
    problems += [f"unknown field {key!r}" for key in event if key not in hints]
    problems += [f"{key!r} is {event[key]!r}, not {hints[key]}" for key in event
                 if key in hints and not _conforms(event[key], hints[key])]
    return problems


def test_every_event_type_is_named_by_its_class() -> None:
    for name, cls in protocol.EVENT_TYPES.items():
        assert typing.get_type_hints(cls)["type"] == typing.Literal[name], cls
    assert protocol.RUN_EVENT_TYPES < set(protocol.EVENT_TYPES)


def test_the_status_rules() -> None:
    assert protocol.execution_state(None, None, None) == "pending"
    assert protocol.execution_state(None, None, 1.0) == "assigned"
    assert protocol.execution_state(None, 2.0, 1.0) == "running"
    assert protocol.execution_state("error", 2.0, 1.0) == "error"
    order = ["pending", "assigned", "running", "value"]
    assert [protocol.status_rank(s) for s in order] == sorted(protocol.status_rank(s) for s in order)
    assert {kind: protocol.run_state(kind) for kind in ("running", "suspended", "value", "cancelled", "abandoned",
                                                        "error", "crashed", "timeout")} == {
        "running": "running", "suspended": "running", "value": "succeeded", "cancelled": "cancelled",
        "abandoned": "failed", "error": "failed", "crashed": "failed", "timeout": "failed"}
    assert protocol.FAILURE_KINDS < protocol.FINAL_KINDS


def test_the_front_ends_copy_is_current() -> None:
    result = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_orchestrator_handles_every_operation_and_nothing_else() -> None:
    """Each operation of the protocol has one handler, `on_<op>` of the component that owns it."""
    from coflux_server.orchestrator.core import Orchestrator
    from coflux_server.store import create_store_engine

    orchestrator = Orchestrator(create_store_engine("sqlite://"), lambda out, events: None)
    assert set(orchestrator._handlers) == set(protocol.Op)
    for op, handler in orchestrator._handlers.items():
        assert handler.__name__ == f"on_{op}"
    assert not set(protocol.Op) & set(protocol.LoopOp)


@pytest.fixture(scope="module")
def observe_worker(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    worker = Worker(server, ["observing", "myapp.workflows", "other.workflows"], concurrency=4,
                    log=tmp_path_factory.mktemp("protocol") / "w.log", extra=["--workspace", WORKSPACE]).start()
    worker.wait_registered()
    yield worker
    worker.stop()


def test_every_event_the_server_sends_fits_the_protocol(server: Server, observe_worker: Worker) -> None:
    """Runs that produce most kinds of event; each one, live and replayed from the feed, has the
    fields its TypedDict declares and no others."""
    from coflux.client import Client

    live: list[dict] = []
    with Client(server.url, server.token, workspace=WORKSPACE) as client:
        client.subscribe(protocol.RUNS_TOPIC, live.append)
        runs = [client.submit("observing", "training", 3), client.submit("observing", "observed", 2, 2),
                client.submit("myapp.workflows", "parent", 2),
                client.submit("myapp.workflows", "handles", 3), client.submit("myapp.workflows", "catches")]
        for run in runs:
            client.wait(f"{run.id}:1:1", timeout=120)  # an error outcome too: it still sends its events
        client.wait(client.rerun(f"{runs[2].id}:1"), timeout=120)
        replayed = [event for run in runs
                    for event in client.connection.call("subscribe", {"topic": protocol.run_topic(run.id),
                                                                      "after": 0})["events"]]
        workers = client.connection.call("subscribe", {"topic": protocol.WORKERS_TOPIC, "after": 0})["events"]
    events = replayed + workers + [e for e in live if "seq" in e]
    seen = {event["type"] for event in events}
    assert {"step", "assigned", "started", "result", "logs", "metrics", "dependency", "child_run", "rerun",
            "run", "session"} <= seen, seen
    wrong = {}
    for event in events:
        cls = protocol.EVENT_TYPES.get(event["type"])
        assert cls is not None, f"an event type the protocol does not name: {event}"
        problems = _problems({k: v for k, v in event.items() if k != "seq"}, cls)
        if problems:
            wrong.setdefault(event["type"], (problems, event))
    assert not wrong, wrong
