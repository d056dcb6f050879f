"""The Python client: `Client(url, token).submit("module", "workflow", *args, **kwargs)` returns a
run handle with `.id` and `.result(timeout=None)`."""

from __future__ import annotations

import datetime as dt
import decimal
import fractions
import json
import re
import uuid
from pathlib import Path

import pytest
from harness import wait_until
from myapp.workflows import PaymentDeclined

import coflux as cf
from coflux.client import Client, Run


def test_submit_and_result(client):
    run = client.submit("myapp.workflows", "process", "https://x")
    assert isinstance(run, Run)
    assert re.fullmatch(r"R[A-Za-z0-9]+", run.id)
    assert run.result() == "https://x has 9 characters"
    assert run.result(timeout=None) == "https://x has 9 characters"  # again: already finished


def test_keyword_arguments(client):
    assert client.submit("myapp.workflows", "greetings", name="Ann", greeting="Yo").result(60)[1] == "Yo, Ann!"
    assert client.submit("myapp.workflows", "greetings", "Bo").result(60)[1] == "Hi, Bo!"


@pytest.mark.parametrize("value", [
    {1: (2, 3), "s": {4, 5}},
    dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    decimal.Decimal("3.14"),
    uuid.UUID(int=7),
    b"\x00bytes",
    fractions.Fraction(1, 3),  # pickled
    [frozenset({1}), (None,)],
])
def test_python_values_travel_through_server_and_worker(client, value):
    assert client.submit("myapp.workflows", "identity", value).result(60) == value


def test_result_timeout(client, tmp_path: Path):
    gate = tmp_path / "gate"
    run = client.submit("myapp.workflows", "gated", str(gate), 1)
    try:
        wait_until(lambda: Path(f"{gate}.started").exists(), 60, message="the gate task to start")
        with pytest.raises(TimeoutError, match=run.id):
            run.result(timeout=0.2)
        assert run.poll() is None
        assert run.poll(0.1, default="not yet") == "not yet"
    finally:
        gate.touch()
    assert run.result(timeout=60) == {"before": 1, "gate": 100, "after": 1}
    assert run.poll() == {"before": 1, "gate": 100, "after": 1}


def test_errors_are_raised_as_the_original_type(client):
    run = client.submit("myapp.workflows", "uncaught")
    with pytest.raises(PaymentDeclined) as info:
        run.result(60)
    error = info.value
    assert isinstance(error, cf.ExecutionError)
    assert error.error_type == "myapp.workflows.PaymentDeclined"
    assert str(error) == "card declined for 7"
    assert error.execution_id.startswith(run.id)
    assert "decline(7)" in error.remote_traceback


def test_reattach_and_inspect(client, server):
    run = client.submit("myapp.workflows", "nested", 1, 2, 3)
    assert run.result(60) == 6
    with Client(server.url, server.token) as other:
        again = other.run(run.id)
        assert (again.id, again.module, again.target) == (run.id, "myapp.workflows", "nested")
        assert again.result(60) == 6
        snapshot = again.inspect()
    assert [s["target"] for s in snapshot["steps"]] == ["nested", "add_three", "add", "add"]
    assert json.dumps(snapshot)  # plain JSON


def test_client_from_environment(server, workers, monkeypatch):
    monkeypatch.setenv("COFLUX_SERVER", server.url)
    monkeypatch.setenv("COFLUX_TOKEN", server.token)
    with Client() as c:
        assert c.url == server.url
        assert c.submit("myapp.workflows", "process", "env").result(60) == "env has 3 characters"


def test_submit_a_target(client):
    from myapp import workflows as wf

    run = client.submit_target(wf.greetings, "Cy", greeting="Hey")
    assert run.result(60)[1] == "Hey, Cy!"
