"""Call-site overrides: `t.with_cache(...)`, `with_retries`, `with_defer`, `with_memo`, `with_delay`,
`with_timeout`, `with_requires` return copies whose options are the ones the step is submitted with
(the caller's options win), and validate their argument like the decorators do. Stub options are
the caller's too. (Every decorator form is parsed in tests/test_options.py.)"""

from __future__ import annotations

import datetime as dt

import pytest

import coflux as cf
from coflux.target import lookup

from .sched_helpers import executions, kinds, lines, steps_of

MODULE = "overrides"


def plain_task():
    from schedapps import overrides

    return overrides.plain


# ------------------------------------------------------------------ copies, in the SDK


@pytest.mark.parametrize(("method", "value", "option", "expected"), [
    ("with_cache", True, "cache", {"params": None, "max_age": None, "namespace": None, "version": None}),
    ("with_cache", dt.timedelta(minutes=1), "cache", {"params": None, "max_age": 60.0, "namespace": None,
                                                      "version": None}),
    ("with_cache", cf.Cache(params="x", version="2"), "cache", {"params": [1], "max_age": None, "namespace": None,
                                                                  "version": "2"}),
    ("with_retries", 2, "retries", {"limit": 2, "backoff": [0, 0]}),
    ("with_retries", True, "retries", {"limit": None, "backoff": [1, 60]}),
    ("with_retries", cf.Retries(3, backoff=(0.2, 0.6)), "retries", {"limit": 3, "backoff": [0.2, 0.6]}),
    ("with_defer", True, "defer", {"params": None}),
    ("with_defer", cf.Defer(params=["x"]), "defer", {"params": [1]}),
    ("with_memo", True, "memo", True),
    ("with_memo", ["x"], "memo", [1]),
    ("with_memo", False, "memo", False),
    ("with_delay", 1.5, "delay", 1.5),
    ("with_delay", dt.timedelta(seconds=2), "delay", 2.0),
    ("with_timeout", 3, "timeout", 3.0),
    ("with_timeout", dt.timedelta(milliseconds=500), "timeout", 0.5),
    ("with_requires", {"gpu": ["A100", "H100"]}, "requires", {"gpu": ["A100", "H100"]}),
    ("with_requires", {"gpu": True}, "requires", {"gpu": ["true"]}),
])
def test_with_returns_a_copy_with_the_option(method, value, option, expected):
    original = plain_task()
    before = dict(original.options)
    copy = getattr(original, method)(value)
    assert copy is not original and isinstance(copy, cf.Target)
    assert copy.options[option] == expected
    assert original.options == before  # the target itself is unchanged ...
    assert lookup("schedapps.overrides", "plain") is original  # ... and still the registered one
    assert (copy.module, copy.name, copy.kind) == (original.module, original.name, original.kind)


def test_with_copies_chain_and_can_switch_an_option_off():
    original = plain_task()
    copy = original.with_cache(10).with_delay(2).with_retries(1)
    assert copy.options["cache"]["max_age"] == 10.0 and copy.options["delay"] == 2.0
    assert copy.options["retries"]["limit"] == 1
    off = copy.with_cache(False).with_delay(0).with_retries(0).with_requires(None)
    assert not {"cache", "delay", "retries", "requires"} & set(off.options)
    assert copy.options["cache"]["max_age"] == 10.0  # a copy of a copy leaves the copy alone
    assert copy.with_retries(cf.Retries(1, when=KeyError)).retries.should_retry(KeyError())


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda t: t.with_cache("yes"), TypeError, "cache must be"),
    (lambda t: t.with_cache(-1), ValueError, "must not be negative"),
    (lambda t: t.with_cache(cf.Cache(params=["nope"])), ValueError, "'nope', which is not a parameter"),
    (lambda t: t.with_retries(-2), ValueError, "retries must not be negative"),
    (lambda t: t.with_retries("3"), TypeError, "retries must be"),
    (lambda t: t.with_defer("yes"), TypeError, "defer must be"),
    (lambda t: t.with_defer(cf.Defer(params=["zz"])), ValueError, "'zz', which is not a parameter"),
    (lambda t: t.with_memo(["zz"]), ValueError, "memo names 'zz'"),
    (lambda t: t.with_memo(3), TypeError, "memo"),
    (lambda t: t.with_delay(-1), ValueError, "delay must not be negative"),
    (lambda t: t.with_delay("soon"), TypeError, "delay must be a number of seconds or a timedelta"),
    (lambda t: t.with_timeout(dt.timedelta(seconds=-1)), ValueError, "timeout must not be negative"),
    (lambda t: t.with_timeout("1h"), TypeError, "timeout must be a number of seconds"),
    (lambda t: t.with_requires(["gpu"]), TypeError, "requires must be a dict"),
    (lambda t: t.with_requires({"gpu": 3}), TypeError, r"requires\['gpu'\] must be"),
])
def test_with_validates_like_the_decorator(call, error, message):
    original = plain_task()
    before = dict(original.options)
    with pytest.raises(error, match=message):
        call(original)
    assert original.options == before


def test_with_memo_on_a_workflow_takes_a_bool_only():
    from schedapps import overrides

    assert overrides.cached_call.with_memo(True).options["memo"] is True
    with pytest.raises(TypeError, match="memo on a workflow must be a bool"):
        overrides.cached_call.with_memo(["log"])


# ------------------------------------------------------------------ copies, through the server


def test_with_cache(sched, tmp_path):
    log = tmp_path / "log"
    first_id, first = sched.run(MODULE, "cached_call", str(log), 1)
    second_id, second = sched.run(MODULE, "cached_call", str(log), 1)
    assert first == second == 1 and len(lines(log)) == 1
    assert kinds(sched.inspect(second_id), "plain") == ["cached"]
    # The target without the override is not cached.
    sched.run(MODULE, "uncached_call", str(log), 1)
    sched.run(MODULE, "uncached_call", str(log), 1)
    assert len(lines(log)) == 3


def test_with_memo(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "memo_calls", str(log))
    memo_a, memo_b = value["memo_ids"]
    plain_c, plain_d = value["plain_ids"]
    assert memo_a == memo_b and len({memo_a, plain_c, plain_d}) == 3
    assert len(steps_of(sched.inspect(run_id), "plain")) == 3 and len(lines(log)) == 3


def test_with_retries(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "retry_calls", str(log))
    assert value == {"with_retries": 2, "plain": "first plain call fails"}
    run = sched.inspect(run_id)
    override, plain = steps_of(run, "flaky")
    assert [e["result"]["kind"] for e in override["executions"]] == ["error", "value"]
    assert [e["result"]["kind"] for e in plain["executions"]] == ["error"]


def test_with_defer_and_with_delay(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "defer_delay_calls", str(log))
    assert value["values"] == [1, 1, 1] and lines(log) == ["plain 5"]
    run = sched.inspect(run_id)
    assert kinds(run, "plain") == ["deferred", "deferred", "value"]
    kept = executions(run, "plain")[2]
    assert abs(kept["execute_after"] - kept["created_at"] - 0.3) < 0.01
    assert kept["assigned_at"] >= kept["execute_after"]


def test_with_timeout(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "timeout_call", str(log))
    assert value == "timed out"
    (execution,) = executions(sched.inspect(run_id), "slow")
    assert execution["result"]["kind"] == "timeout"
    assert 0.4 - 0.02 <= execution["result"]["at"] - execution["assigned_at"] < 3


def test_with_requires(sched):
    run_id, value = sched.run(MODULE, "requires_call")
    assert value == {"required": "waiting", "plain": True}
    required, plain = executions(sched.inspect(run_id), "where")
    assert required["result"]["kind"] == "cancelled" and required["assigned_at"] is None
    assert plain["result"]["kind"] == "value"


def test_stub_options_are_the_callers(sched, tmp_path):
    log = tmp_path / "log"
    sched.run(MODULE, "stub_call", str(log), 9)
    second_id, value = sched.run(MODULE, "stub_call", str(log), 9)
    assert value == 1 and len(lines(log)) == 1
    assert kinds(sched.inspect(second_id), "plain") == ["cached"]
