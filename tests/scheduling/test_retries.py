"""retries (design.md section 3): `N` = up to N retries with no delay; `True` = unlimited with a random
delay in 1-60 s; `cf.Retries(limit, backoff=(min, max), when)`: retry k waits
min + k / max(limit - 1, 1) * (max - min). `when` (class, tuple, predicate) decides where the error
happened. Each retry is a new attempt of the same step; the caller sees only the final outcome."""

from __future__ import annotations

import pytest

from .sched_helpers import FakeWorker, executions, kinds, lines, steps_of, wait_snapshot

MODULE = "retrying"


def attempt(sched, name: str, *args):
    return sched.run(MODULE, "attempt", name, list(args))


def test_linear_backoff(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = attempt(sched, "always_fails", str(log))
    # The caller sees the last attempt's error only.
    assert value == {"error": "builtins.ValueError", "message": "still broken after 4"}
    assert len(lines(log)) == 4  # the first attempt and three retries

    run = sched.inspect(run_id)
    (step,) = steps_of(run, "always_fails")
    attempts = step["executions"]
    assert [e["attempt"] for e in attempts] == [1, 2, 3, 4]
    assert kinds(run, "always_fails") == ["error"] * 4
    assert [e["result"]["successor"] for e in attempts] == [e["id"] for e in attempts[1:]] + [None]
    # Retries(3, backoff=(0.2, 0.6)): waits 0.2, 0.4, 0.6.
    for previous, retry, wait in zip(attempts[:-1], attempts[1:], (0.2, 0.4, 0.6), strict=True):
        assert abs(retry["execute_after"] - retry["created_at"] - wait) < 0.02
        assert abs(retry["created_at"] - previous["result"]["at"]) < 0.1  # scheduled when it failed
        waited = retry["started_at"] - previous["result"]["at"]
        assert wait - 0.02 <= waited < wait + 1.5, (wait, waited)


def test_an_int_retries_without_delay_and_the_caller_sees_the_success(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = attempt(sched, "flaky", str(log), 1)
    assert value == {"value": 2}
    run = sched.inspect(run_id)
    assert kinds(run, "flaky") == ["error", "value"]
    assert executions(run, "flaky")[1]["execute_after"] is None

    # retries=2: three attempts at most.
    run_id, value = attempt(sched, "flaky", str(tmp_path / "log2"), 5)
    assert value == {"error": "builtins.RuntimeError", "message": "flake 3"}
    assert kinds(sched.inspect(run_id), "flaky") == ["error"] * 3


@pytest.mark.parametrize(("name", "argument", "attempts"), [
    ("only_key", "key", 3),  # when=KeyError
    ("only_key", "value", 1),
    ("key_or_index", "index", 3),  # when=(KeyError, IndexError)
    ("key_or_index", "key", 3),
    ("key_or_index", "runtime", 1),
    ("by_predicate", "transient glitch", 3),  # when=lambda e: "transient" in str(e)
    ("by_predicate", "permanent", 1),
])
def test_when_decides_where_the_error_happened(sched, tmp_path, name, argument, attempts):
    log = tmp_path / "log"
    run_id, value = attempt(sched, name, str(log), argument)
    assert "error" in value
    assert len(lines(log)) == attempts
    assert kinds(sched.inspect(run_id), name) == ["error"] * attempts


def test_unlimited_retries_with_a_backoff_range(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = attempt(sched, "unlimited", str(log), 3)
    assert value == {"value": 4}
    attempts = executions(sched.inspect(run_id), "unlimited")
    assert [e["result"]["kind"] for e in attempts] == ["error", "error", "error", "value"]
    for retry in attempts[1:]:  # no limit: a random delay between min and max
        assert 0.1 - 0.01 <= retry["execute_after"] - retry["created_at"] <= 0.3 + 0.01


def test_retries_true_is_unlimited_with_a_delay_of_one_to_sixty_seconds(sched, tmp_path):
    log = tmp_path / "log"
    run = sched.submit(MODULE, "attempt", "retried_forever", [str(log)])
    snapshot = wait_snapshot(sched, run.id, lambda r: len(executions(r, "retried_forever")) == 2,
                             message="the first retry to be scheduled")
    first, retry = executions(snapshot, "retried_forever")
    assert first["result"]["kind"] == "error" and first["result"]["successor"] == retry["id"]
    assert 1 - 0.01 <= retry["execute_after"] - retry["created_at"] <= 60 + 0.01
    assert retry["result"] is None and retry["assigned_at"] is None  # waiting for its time
    sched.client().cancel(run.id)
    assert kinds(sched.inspect(run.id), "retried_forever") == ["error", "cancelled"]
    assert len(lines(log)) == 1


def test_a_crash_is_retried(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = attempt(sched, "crashes_once", str(log))
    assert value == {"value": "survived"}
    assert kinds(sched.inspect(run_id), "crashes_once") == ["crashed", "value"]


def test_abandonment_is_retried(sched):
    fake = FakeWorker(sched, "schedapps_ghost", "ghost_retried", {"retries": {"limit": 1, "backoff": [0, 0]}})
    try:
        run = sched.client().submit("schedapps_ghost", "ghost_retried")
        assert fake.wait_received(1) == [f"{run.id}:1:1"]
        fake.reregister_without_running()
        assert fake.wait_received(2)[1] == f"{run.id}:1:2"  # the retry went to the same worker
        fake.reregister_without_running()
        assert sched.wait_outcome(f"{run.id}:1:1")["status"] == "abandoned"
        assert [e["result"]["kind"] for e in sched.inspect(run.id)["steps"][0]["executions"]] == \
            ["abandoned", "abandoned"]
    finally:
        fake.close()


def test_without_retries_the_first_error_is_final(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = attempt(sched, "no_retries", str(log), "key")
    assert value == {"error": "builtins.KeyError", "message": "'key'"}
    assert kinds(sched.inspect(run_id), "no_retries") == ["error"]


def test_call_site_when_is_honoured(sched, tmp_path):
    """`with_retries(cf.Retries(2, when=KeyError))` on a task without retries: a ValueError is final."""
    log = tmp_path / "log"
    run_id, value = attempt(sched, "override_when", str(log), "value")
    assert value["error"] == "builtins.ValueError"
    assert kinds(sched.inspect(run_id), "no_retries") == ["error"]  # ValueError is not KeyError
