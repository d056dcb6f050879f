"""Robustness (issue 8): one request never stops the orchestrator, a failed batch never strands
waiters, recovery re-queues what never started, and a worker's identity is its own.

Every test runs a real `coflux server` subprocess (its own, on a temporary data directory), real
`coflux worker`s and the real Client; a hostile or lossy peer is a raw protocol connection
(`coflux.connection.Connection`, which sends whatever params it is given).
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Server, Worker, free_port, wait_until

from coflux.client import Client
from coflux.connection import Connection, RemoteError


class Cluster:
    def __init__(self, tmp: Path, extra: list[str] | None = None) -> None:
        self.tmp = tmp
        self.server = Server(tmp / "data", port=free_port(), extra=extra)
        self.workers: list[Worker] = []
        self.connections: list[Any] = []

    def start_worker(self, modules: list[str] | None = None, concurrency: int = 3) -> Worker:
        worker = Worker(self.server, modules or ["myapp.workflows"], concurrency=concurrency,
                        log=self.tmp / f"worker{len(self.workers)}.log")
        self.workers.append(worker)
        worker.start().wait_registered()
        return worker

    def client(self) -> Client:
        client = Client(self.server.url, self.server.token)
        self.connections.append(client)
        return client

    def raw(self) -> Connection:
        """A protocol connection that sends whatever it is told (a hostile or lossy peer)."""
        connection = Connection(self.server.url, self.server.token, name="raw").start()
        self.connections.append(connection)
        return connection

    def logs(self) -> str:
        workers = "".join(f"--- worker log\n{w.output()[-3000:]}\n" for w in self.workers)
        return f"--- server log\n{self.server.output()[-6000:]}\n{workers}"

    def stop(self) -> None:
        for connection in self.connections:
            connection.close()
        for worker in self.workers:
            worker.stop()
        self.server.stop()


@pytest.fixture()
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    short_grace = params.get("how") == "expired" or "stored_huge" in request.node.name
    c = Cluster(tmp_path, ["--reconnect-grace", "1"] if short_grace else None)
    c.server.start()
    try:
        yield c
    except BaseException:
        print(c.logs())
        raise
    finally:
        c.stop()


def call(connection: Connection, op: str, params: dict, timeout: float = 15) -> Any:
    return connection.request(op, params).result(timeout)


def refused(connection: Connection, op: str, params: dict, timeout: float = 15) -> RemoteError:
    with pytest.raises(RemoteError) as info:
        call(connection, op, params, timeout)
    return info.value


def executions(client: Client, run_id: str, target: str) -> list[dict]:
    return [e for s in client.get_run(run_id)["steps"] if s["target"] == target for e in s["executions"]]


def wait_running(client: Client, run_id: str, target: str, path: Path | None = None) -> str:
    """The id of the (first) execution of `target` in the run once it is assigned (and, for a gate,
    once it has started)."""
    def assigned() -> str | None:
        found = [e for e in executions(client, run_id, target) if e["assigned_at"] is not None]
        return found[0]["id"] if found else None
    execution_id = wait_until(assigned, 30, 0.05, f"{target} to be assigned")
    if path is not None:
        wait_until(lambda: os.path.exists(str(path) + ".started"), 30, 0.05, f"{target} to start")
    return execution_id


def healthy(server: Server) -> dict:
    health = server.get("api/health")
    assert health["ok"] is True, health
    return health


# ------------------------------------------------------------------ 1. no request stops the orchestrator


def test_hostile_numbers_fail_alone_and_the_orchestrator_keeps_serving(cluster: Cluster) -> None:
    cluster.start_worker()
    client = cluster.client()
    raw = cluster.raw()
    done = client.submit("myapp.workflows", "identity", 1)
    assert done.result(timeout=30) == 1
    # Infinity, NaN and a timer of 317 years, where users and raw clients pass numbers.
    for timeout in (math.inf, math.nan, -1):
        error = refused(raw, "wait", {"execution": done.execution_id, "timeout": timeout})
        assert error.code == "bad_request" and "timeout" in str(error), error
    for options in ({"delay": 1e10}, {"delay": math.inf}, {"timeout": math.nan}, {"timeout": 1e10},
                    {"retries": {"limit": 1, "backoff": [0, math.inf]}}, {"retries": {"limit": 2**63}},
                    {"cache": {"max_age": math.nan}}):
        error = refused(raw, "submit", {"module": "myapp.workflows", "target": "identity", "type": "workflow",
                                        "args": [{"v": 1}], "options": options})
        assert error.code == "bad_request" and "options." in str(error), (options, error)
    # A wait of 1e10 s is a wait without timeout (no timer that overflows a thread wait).
    pending = client.submit("myapp.workflows", "gated", str(cluster.tmp / "gate"), 0)
    long_wait = raw.request("wait", {"execution": pending.execution_id, "timeout": 1e10})
    # The SDK: math.inf means "no timeout"; NaN is a clear ValueError before anything is sent.
    assert client.submit("myapp.workflows", "identity", 2).result(timeout=math.inf) == 2
    with pytest.raises(ValueError, match="finite"):
        done.result(timeout=math.nan)
    # The orchestrator still serves everything, and the health route says it never restarted.
    (cluster.tmp / "gate").touch()
    assert pending.result(timeout=60) == {"before": 0, "gate": 100, "after": 0}
    assert long_wait.result(15)["status"] == "value"
    health = healthy(cluster.server)
    assert health["orchestrator"]["alive"] is True and health["orchestrator"]["restarts"] == 0


def test_a_stored_huge_delay_does_not_stop_the_restarted_orchestrator(cluster: Cluster) -> None:
    """A delay stored before validation existed (here: 1e300 s) must not kill the orchestrator
    each time it starts and loads the delayed execution."""
    cluster.start_worker()
    client = cluster.client()
    delayed = client.submit_json("myapp.workflows", "identity", [1], options={"delay": 3600})
    cluster.server.stop()
    db = sqlite3.connect(cluster.tmp / "data" / "coflux.db")
    with db:
        db.execute("UPDATE executions SET execute_after = 1e300 WHERE id = ?", (delayed.execution_id,))
    db.close()
    cluster.server.start()
    time.sleep(2)  # past the reconnect grace: the loaded session timers are gone, the delay is next
    assert client.submit("myapp.workflows", "identity", 2).result(timeout=60) == 2
    assert client.wait(delayed.execution_id, 0)["status"] == "pending"
    assert healthy(cluster.server)["orchestrator"]["restarts"] == 0


def test_sdk_refuses_non_finite_and_huge_seconds() -> None:
    import coflux as cf

    for bad in (math.inf, math.nan, 1e10, -1):
        with pytest.raises(ValueError):
            cf.task(delay=bad)(lambda: None)
        with pytest.raises(ValueError):
            cf.task(timeout=bad)(lambda: None)
        with pytest.raises(ValueError):
            cf.Retries(limit=2, backoff=(0, bad))
    with pytest.raises(ValueError, match="finite"):
        cf.Cache(max_age=math.nan)
    assert cf.task(delay=3600, timeout=60)(lambda: None) is not None


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_supervisor_restarts_a_dead_orchestrator_thread(tmp_path: Path) -> None:
    """Only a BaseException (or a bug in the loop's own error handling) can end the loop thread:
    the supervisor notices, rebuilds the working set from the database, and starts a new one."""
    from coflux_server.orchestrator import Orchestrator
    from coflux_server.store import create_store_engine

    class Boom(BaseException):
        pass

    def die(_orchestrator: Any) -> None:
        raise Boom()

    orchestrator = Orchestrator(create_store_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"), lambda out, ev: None)
    orchestrator.start()
    try:
        orchestrator.call(die)
        wait_until(lambda: orchestrator.health()["restarts"] == 1, 10, message="a restart")
        assert orchestrator.call(lambda o: "still serving").result(10) == "still serving"
        assert orchestrator.health()["alive"] is True
    finally:
        orchestrator.stop()


# ------------------------------------------------------------------ 2. a failed batch never strands waiters


def test_a_bad_command_fails_alone_and_every_waiter_is_answered(cluster: Cluster) -> None:
    """Commands no database can store, sent in one frame with good ones, while a workflow waits
    on a child: each bad one fails alone with a clear error, the good ones succeed, and the
    waiting workflow is not stranded."""
    cluster.start_worker()
    client = cluster.client()
    gate = cluster.tmp / "gate"
    run = client.submit("myapp.workflows", "gated", str(gate), 0)
    wait_running(client, run.id, "gate", gate)
    raw = cluster.raw()
    params = {"module": "myapp.workflows", "target": "identity", "type": "workflow", "args": [{"v": 7}]}
    futures: list = []

    def one_frame() -> None:  # requests queued in one loop turn travel in one frame
        futures.append(raw.request("submit", {**params, "idempotency_key": {"not": "a string"}}))
        futures.append(raw.request("submit", params))
        futures.append(raw.request("group", {"execution": run.execution_id, "group": 2**63}))
        futures.append(raw.request("register", {"targets": {}, "concurrency": 2**63}))
        futures.append(raw.request("submit", {**params, "idempotency_key": "fine"}))
    raw.call_soon(one_frame)
    wait_until(lambda: len(futures) == 5, 5)
    for index in (0, 2, 3):
        with pytest.raises(RemoteError) as info:
            futures[index].result(15)
        assert info.value.code == "bad_request", info.value
    good = [futures[1].result(15), futures[4].result(15)]
    assert all(reply["run"] for reply in good)
    assert client.wait(good[0]["execution"], 30)["value"] == {"v": 7}
    gate.touch()
    assert run.result(timeout=60) == {"before": 0, "gate": 100, "after": 0}
    healthy(cluster.server)


def test_a_call_resent_after_a_database_lock_finds_its_step(cluster: Cluster) -> None:
    """A workflow waits in `call` on a child; the database is locked (another process holds the
    write lock past the server's busy timeout), so the batch holding the child's result fails.
    The server tells waiters to re-send; the re-sent `call` must wait on the step it created
    (not trip the step's unique request key), and the run completes with one attempt each."""
    cluster.start_worker()
    client = cluster.client()
    gate = cluster.tmp / "gate"
    run = client.submit("myapp.workflows", "gated", str(gate), 0)
    wait_running(client, run.id, "gate", gate)
    locker = sqlite3.connect(cluster.tmp / "data" / "coflux.db", timeout=30, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # the write lock; readers (recovery) still work in WAL mode
    try:
        gate.touch()  # the gate's result now waits for the lock, past the busy timeout (10 s)
        wait_until(lambda: os.path.exists(str(gate) + ".done"), 30, 0.05, "the gate to finish")
        time.sleep(11)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert run.result(timeout=90) == {"before": 0, "gate": 100, "after": 0}
    snapshot = client.get_run(run.id)
    assert [s["target"] for s in snapshot["steps"]] == ["gated", "gate"]  # no second gate step
    assert [len(s["executions"]) for s in snapshot["steps"]] == [1, 1]
    assert "database is locked" in cluster.server.output()  # the failure did happen
    healthy(cluster.server)


# ------------------------------------------------------------------ 3. recovery re-queues what never started


def _lossy_worker(cluster: Cluster, module: str = "myapp.workflows", target: str = "identity") -> tuple:
    """A worker that registers `target` and loses every `execute` push it gets (as a paused worker
    or a dropped connection would): it never starts anything."""
    pushes: list[dict] = []
    connection = Connection(cluster.server.url, cluster.server.token, name="lossy",
                            on_push=pushes.append).start()
    cluster.connections.append(connection)
    params = {"kind": "headless", "name": "lossy", "workspace": "default", "concurrency": 1,
              "targets": {module: {target: {"type": "workflow", "parameters": [{"name": "value"}], "options": {}}}}}
    reply = call(connection, "register", {**params, "session": None})
    return connection, pushes, params, reply


@pytest.mark.parametrize("how", ["resumed", "after_server_restart", "expired"])
def test_work_that_never_started_is_requeued_not_abandoned(cluster: Cluster, how: str) -> None:
    connection, pushes, params, reply = _lossy_worker(cluster)
    client = cluster.client()
    run = client.submit("myapp.workflows", "identity", 42)
    wait_until(lambda: any(p.get("op") == "execute" for p in pushes), 15, message="the execute push")
    if how == "after_server_restart":
        port = cluster.server.port
        cluster.server.kill()
        cluster.server.start()
        assert cluster.server.port == port
        wait_until(lambda: connection.connected, 30, message="the lossy worker to reconnect")
    if how == "expired":
        # It never comes back: once its session expires, another worker takes the work.
        connection.close()
    else:
        # It resumes its session holding nothing (and no longer hosting the target).
        resumed = call(connection, "register", {**params, "targets": {}, "session": reply["session"],
                                                "secret": reply.get("secret"), "running": []})
        assert resumed["session"] == reply["session"]
    cluster.start_worker()
    assert client.wait(run.execution_id, 90 if how == "expired" else 30) == \
        {"status": "value", "execution": run.execution_id, "value": {"v": 42}}
    (execution,) = executions(client, run.id, "identity")
    assert execution["result"]["kind"] == "value"  # one attempt, not abandoned then retried


# ------------------------------------------------------------------ 4. a worker's identity is its own


def test_a_result_from_another_connection_is_refused(cluster: Cluster) -> None:
    cluster.start_worker()
    client = cluster.client()
    gate = cluster.tmp / "gate"
    run = client.submit("myapp.workflows", "gated", str(gate), 0)
    gate_id = wait_running(client, run.id, "gate", gate)
    hostile = cluster.raw()
    forged = {"execution": gate_id, "kind": "value", "value": {"v": 999}}
    assert refused(hostile, "result", forged).code == "bad_request"  # not even a worker
    call(hostile, "register", {"kind": "headless", "name": "hostile", "targets": {}, "session": None})
    error = refused(hostile, "result", forged)
    assert error.code == "bad_request" and "not assigned to this worker" in str(error)
    gate.touch()
    assert run.result(timeout=60) == {"before": 0, "gate": 100, "after": 0}


def test_a_session_cannot_be_taken_over_without_its_secret(cluster: Cluster) -> None:
    victim = cluster.start_worker()
    client = cluster.client()
    gate = cluster.tmp / "gate"
    run = client.submit("myapp.workflows", "gated", str(gate), 0)
    wait_running(client, run.id, "gate", gate)
    session = victim.session()["id"]  # type: ignore[index]
    hostile = cluster.raw()
    for secret in (None, "guessed"):
        taken = call(hostile, "register", {"kind": "headless", "name": "hostile", "targets": {}, "running": [],
                                           "session": session, "secret": secret})
        assert taken["session"] != session  # a session of its own, nothing taken over
    assert victim.session()["id"] == session  # type: ignore[index]
    gate.touch()
    assert run.result(timeout=60) == {"before": 0, "gate": 100, "after": 0}
    assert [len(s["executions"]) for s in client.get_run(run.id)["steps"]] == [1, 1]
    assert "took over" not in victim.output()
