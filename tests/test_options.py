"""Decorator options (coflux/options.py): every accepted form becomes the documented wire options,
and every wrong one fails when the function is decorated, with a clear TypeError/ValueError."""

from __future__ import annotations

import datetime as dt

import pytest

import coflux as cf


def fn(a, b=1):
    return a


def task_options(**options) -> dict:
    return cf.task(**options)(fn).options


# ------------------------------------------------------------------ accepted forms


def test_defaults_send_nothing():
    assert task_options() == {}
    assert cf.workflow()(fn).options == {}


def test_only_an_explicit_memo_false_opts_out():
    # design.md: a task with memo=False opts out of a workflow's memo=True; the default does not.
    assert "memo" not in task_options()
    assert task_options(memo=False) == {"memo": False}
    assert cf.task()(fn).with_memo(False).options == {"memo": False}


@pytest.mark.parametrize(("cache", "expected"), [
    (True, {"params": None, "max_age": None, "namespace": None, "version": None}),
    (60, {"params": None, "max_age": 60.0, "namespace": None, "version": None}),
    (1.5, {"params": None, "max_age": 1.5, "namespace": None, "version": None}),
    (dt.timedelta(minutes=2), {"params": None, "max_age": 120.0, "namespace": None, "version": None}),
    (cf.Cache(), {"params": None, "max_age": None, "namespace": None, "version": None}),
    (cf.Cache(max_age=dt.timedelta(hours=1), params=["b"], namespace="ns", version="v2"),
     {"params": [1], "max_age": 3600.0, "namespace": "ns", "version": "v2"}),
    (cf.Cache(params="b, a"), {"params": [1, 0], "max_age": None, "namespace": None, "version": None}),
    (cf.Cache(params="a"), {"params": [0], "max_age": None, "namespace": None, "version": None}),
])
def test_cache_forms(cache, expected):
    assert task_options(cache=cache)["cache"] == expected


@pytest.mark.parametrize("cache", [False, None])
def test_cache_off(cache):
    assert "cache" not in task_options(cache=cache)


@pytest.mark.parametrize(("retries", "expected"), [
    (3, {"limit": 3, "backoff": [0, 0]}),
    (True, {"limit": None, "backoff": [1, 60]}),
    (cf.Retries(), {"limit": None, "backoff": [1, 60]}),
    (cf.Retries(limit=5, backoff=(300, 600)), {"limit": 5, "backoff": [300.0, 600.0]}),
    (cf.Retries(2, backoff=(dt.timedelta(seconds=1), dt.timedelta(minutes=1))), {"limit": 2, "backoff": [1.0, 60.0]}),
    # `when` travels with the step, so the caller's choice is what the executing worker applies
    (cf.Retries(limit=1, when=KeyError), {"limit": 1, "backoff": [1, 60], "when": {"classes": ["builtins.KeyError"]}}),
])
def test_retries_forms(retries, expected):
    assert task_options(retries=retries)["retries"] == expected


@pytest.mark.parametrize("retries", [0, False, None])
def test_retries_off(retries):
    assert "retries" not in task_options(retries=retries)


def test_retries_when_is_evaluated_locally():
    target = cf.task(retries=cf.Retries(limit=2, when=(KeyError, ValueError)))(fn)
    assert target.retries.should_retry(KeyError("k"))
    assert not target.retries.should_retry(ZeroDivisionError())
    # Classes travel by name, so the worker applies the caller's `when`; a lambda cannot travel.
    assert target.options["retries"]["when"] == {"classes": ["builtins.KeyError", "builtins.ValueError"]}
    assert "when" not in cf.task(retries=cf.Retries(limit=2, when=lambda e: True))(fn).options["retries"]
    by_class = cf.Retries(when=KeyError)
    assert by_class.should_retry(KeyError()) and not by_class.should_retry(ValueError())
    predicate = cf.Retries(when=lambda e: "again" in str(e))
    assert predicate.should_retry(RuntimeError("try again")) and not predicate.should_retry(RuntimeError("no"))
    assert cf.Retries().should_retry(Exception())


@pytest.mark.parametrize(("defer", "expected"), [
    (True, {"params": None}),
    (cf.Defer(), {"params": None}),
    (cf.Defer(params=["b"]), {"params": [1]}),
    (cf.Defer("a"), {"params": [0]}),
])
def test_defer_forms(defer, expected):
    assert task_options(defer=defer)["defer"] == expected
    assert "defer" not in task_options(defer=False)


@pytest.mark.parametrize(("memo", "expected"), [
    (True, True),
    (["b"], [1]),
    ("a", [0]),
    ("a, b", [0, 1]),
    (("b", "a"), [1, 0]),
])
def test_task_memo_forms(memo, expected):
    assert task_options(memo=memo)["memo"] == expected


def test_workflow_memo_is_a_bool():
    assert cf.workflow(memo=True)(fn).options["memo"] is True
    with pytest.raises(TypeError, match="memo on a workflow must be a bool"):
        cf.workflow(memo=["a"])(fn)


@pytest.mark.parametrize(("wait", "expected"), [
    (True, [0, 1]),
    ("a", [0]),
    ("a, b", [0, 1]),
    (["b"], [1]),
    (("b", "a"), [1, 0]),
])
def test_wait_forms(wait, expected):
    assert task_options(wait=wait)["wait"] == expected
    assert "wait" not in task_options(wait=False)


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("delay", 5, 5.0),
    ("delay", 0.25, 0.25),
    ("delay", dt.timedelta(minutes=1), 60.0),
    ("timeout", 30, 30.0),
    ("timeout", dt.timedelta(seconds=1.5), 1.5),
])
def test_seconds_forms(option, value, expected):
    assert task_options(**{option: value})[option] == expected
    assert option not in task_options(**{option: 0})
    assert option not in task_options(**{option: dt.timedelta(0)})


@pytest.mark.parametrize(("requires", "expected"), [
    ({"gpu": "A100"}, {"gpu": ["A100"]}),
    ({"gpu": ["A100", "H100"]}, {"gpu": ["A100", "H100"]}),
    ({"gpu": ("A100",)}, {"gpu": ["A100"]}),
    ({"gpu": {"H100", "A100"}}, {"gpu": ["A100", "H100"]}),
    ({"gpu": True}, {"gpu": ["true"]}),
    ({"gpu": False}, {"gpu": []}),
    ({"gpu": []}, {"gpu": []}),
    ({}, {}),
])
def test_requires_forms(requires, expected):
    assert task_options(requires=requires)["requires"] == expected
    assert cf.workflow(requires=requires)(fn).options["requires"] == expected
    assert "requires" not in task_options(requires=None)


def test_recurrent():
    assert task_options(recurrent=True)["recurrent"] is True
    assert "recurrent" not in task_options(recurrent=False)


def test_name_and_stub_options():
    target = cf.task(name="renamed")(fn)
    assert target.name == "renamed"
    stub = cf.stub("other.mod", name="real", cache=True, retries=2, memo=["a"], delay=1)(fn)
    assert (stub.module, stub.name, stub.kind, stub.stub) == ("other.mod", "real", "task", True)
    assert stub.options["cache"]["max_age"] is None and stub.options["retries"]["limit"] == 2
    assert stub.options["memo"] == [0] and stub.options["delay"] == 1.0
    flow = cf.stub("other.mod", type="workflow", memo=True)(fn)
    assert (flow.kind, flow.options["memo"]) == ("workflow", True)


def test_with_copies_leave_the_original_alone():
    target = cf.task()(fn)
    changed = target.with_cache(10).with_retries(2).with_delay(3).with_timeout(4).with_defer(True) \
        .with_memo(["a"]).with_requires({"gpu": "A100"})
    assert changed.options["cache"]["max_age"] == 10.0
    assert changed.options["retries"]["limit"] == 2
    assert changed.options["delay"] == 3.0 and changed.options["timeout"] == 4.0
    assert changed.options["defer"] == {"params": None} and changed.options["memo"] == [0]
    assert changed.options["requires"] == {"gpu": ["A100"]}
    assert "cache" not in target.options and "retries" not in target.options
    with pytest.raises(ValueError):
        target.with_cache(-1)
    with pytest.raises(TypeError):
        target.with_requires(["gpu"])


# ------------------------------------------------------------------ wrong forms


@pytest.mark.parametrize(("options", "error", "message"), [
    ({"cache": "yes"}, TypeError, "cache must be"),
    ({"cache": -5}, ValueError, "cache must not be negative"),
    ({"cache": cf.Cache(params=["nope"])}, ValueError, "'nope', which is not a parameter"),
    ({"retries": -1}, ValueError, "retries must not be negative"),
    ({"retries": "3"}, TypeError, "retries must be"),
    ({"retries": 2.5}, TypeError, "retries must be"),
    ({"defer": "yes"}, TypeError, "defer must be"),
    ({"defer": cf.Defer(params=["zz"])}, ValueError, "'zz', which is not a parameter"),
    ({"memo": ["zz"]}, ValueError, "memo names 'zz'"),
    ({"memo": 3}, TypeError, "memo"),
    ({"wait": ["zz"]}, ValueError, "wait names 'zz'"),
    ({"wait": 3}, TypeError, "wait"),
    ({"delay": -1}, ValueError, "delay must not be negative"),
    ({"delay": "5"}, TypeError, "delay must be a number of seconds or a timedelta"),
    ({"delay": True}, TypeError, "delay must be a number"),
    ({"timeout": dt.timedelta(seconds=-1)}, ValueError, "timeout must not be negative"),
    ({"timeout": "1h"}, TypeError, "timeout must be a number of seconds"),
    ({"requires": ["gpu"]}, TypeError, "requires must be a dict"),
    ({"requires": {1: "x"}}, TypeError, "requires keys must be strings"),
    ({"requires": {"gpu": 3}}, TypeError, r"requires\['gpu'\] must be"),
    ({"requires": {"gpu": [1]}}, TypeError, r"requires\['gpu'\] values must be strings"),
    ({"recurrent": "yes"}, TypeError, "recurrent must be a bool"),
])
def test_wrong_options_fail_at_decoration(options, error, message):
    with pytest.raises(error, match=message):
        cf.task(**options)(fn)


@pytest.mark.parametrize(("build", "error", "message"), [
    (lambda: cf.Cache(max_age=-1), ValueError, "must not be negative"),
    (lambda: cf.Cache(max_age="1d"), TypeError, r"Cache\(max_age=...\) must be a number"),
    (lambda: cf.Cache(namespace=3), TypeError, r"Cache\(namespace=...\) must be a string"),
    (lambda: cf.Cache(version=1), TypeError, r"Cache\(version=...\) must be a string"),
    (lambda: cf.Cache(params=[1]), TypeError, "parameter names"),
    (lambda: cf.Cache(params=5), TypeError, "an iterable of names"),
    (lambda: cf.Defer(params=[None]), TypeError, "parameter names"),
    (lambda: cf.Retries(limit=-1), TypeError, r"Retries\(limit=...\)"),
    (lambda: cf.Retries(limit=True), TypeError, r"Retries\(limit=...\)"),
    (lambda: cf.Retries(limit="3"), TypeError, r"Retries\(limit=...\)"),
    (lambda: cf.Retries(backoff=(10, 1)), ValueError, "less than min"),
    (lambda: cf.Retries(backoff=(1,)), TypeError, r"\(min, max\) pair"),
    (lambda: cf.Retries(backoff=5), TypeError, r"\(min, max\) pair"),
    (lambda: cf.Retries(backoff=(-1, 5)), ValueError, "must not be negative"),
    (lambda: cf.Retries(when="KeyError"), TypeError, r"Retries\(when=...\)"),
    (lambda: cf.Retries(when=int), TypeError, r"Retries\(when=...\)"),
    (lambda: cf.Retries(when=(KeyError, 3)), TypeError, r"Retries\(when=...\)"),
])
def test_wrong_configuration_classes(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_wrong_targets():
    with pytest.raises(TypeError, match=r"\*args and \*\*kwargs"):
        cf.task()(lambda *args: None)
    with pytest.raises(TypeError, match=r"\*args and \*\*kwargs"):
        cf.workflow()(lambda **kwargs: None)
    with pytest.raises(TypeError, match="decorates a function"):
        cf.task()(3)
    with pytest.raises(TypeError, match="module name"):
        cf.stub("")
    with pytest.raises(ValueError, match="type must be 'workflow' or 'task'"):
        cf.stub("m", type="job")
    with pytest.raises(TypeError):
        cf.stub("m", requires={"gpu": "A100"})  # stubs take neither requires ...
    with pytest.raises(TypeError):
        cf.stub("m", timeout=1)  # ... nor timeout
