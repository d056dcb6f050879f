"""The pool rules alone: which pool hosts a waiting execution, why a pool launches nothing (in
order), the backoff after failed launches, when a launched worker is idle, and the placement
rule that keeps a launched worker to its pool's work. The same end to end: tests/test_pools.py."""

from __future__ import annotations

import pytest

from coflux_server.orchestrator.model import Pending, Session
from coflux_server.orchestrator.rules import launch, placement


def pending(**overrides) -> Pending:
    values = dict(id="R1:2:1", step_id="R1:2", run_id="R1", module="app.flows", target="t", type="task",
                  workspace_id=1, execute_after=0.0, arguments=[], options={}, requires={},
                  origin_session_id=None)
    values.update(overrides)
    return Pending(**values)


def pool(**overrides) -> launch.PoolState:
    values = dict(id=1, workspace_id=1, workspace="default", name="gpu", type="process", config={},
                  modules=["app.*"], provides={}, accepts={}, enabled=True)
    values.update(overrides)
    return launch.PoolState(**values)


def facts(**overrides) -> launch.Facts:
    values = dict(allowed=("process",), active=0, starting=0, now=100.0)
    values.update(overrides)
    return launch.Facts(**values)


def test_a_pool_hosts_its_modules_in_its_workspace_for_what_it_provides() -> None:
    assert launch.hosts(pool(), pending())
    assert not launch.hosts(pool(), pending(module="other.flows"))
    assert not launch.hosts(pool(workspace_id=2), pending())
    gpu = pool(provides={"gpu": ["A100"]}, accepts={"gpu": ["A100", "H100"]})
    assert launch.hosts(gpu, pending(requires={"gpu": ["A100"]}))
    assert not launch.hosts(gpu, pending())  # it accepts only work that requires a gpu
    assert not launch.hosts(pool(), pending(requires={"gpu": ["A100"]}))  # a pool without gpus


@pytest.mark.parametrize(("the_pool", "the_facts", "reason"), [
    (pool(enabled=False), facts(allowed=()), "pool gpu is disabled"),
    (pool(), facts(allowed=("docker",)),
     "pool gpu: this server does not run process launchers (start it with --launcher process)"),
    (pool(failures=2, retry_at=110.0, last_error="image not found"), facts(starting=1),
     "pool gpu: launch failed: image not found (retrying in 10 s)"),
    (pool(), facts(starting=1, active=1), "pool gpu: launching a worker"),
    (pool(config={"maxWorkers": 2}), facts(active=2), "pool gpu: at its 2 worker(s) (maxWorkers)"),
    (pool(), facts(active=3), None),
])
def test_the_first_rule_that_refuses_says_why_no_worker_is_launched(
        the_pool: launch.PoolState, the_facts: launch.Facts, reason: str | None) -> None:
    assert launch.refusal(the_pool, the_facts) == reason


def test_failed_launches_back_off_exponentially_up_to_a_bound() -> None:
    assert [launch.backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert launch.backoff(30) == launch.BACKOFF_MAX


def test_a_connected_worker_with_nothing_to_run_for_the_idle_timeout_is_idle() -> None:
    connected = launch.LaunchState(id="L1", pool_id=1, state="connected", secret_hash="x", idle_since=100.0)
    assert launch.idle(connected, running=0, idle_timeout=5.0, now=105.0)
    assert not launch.idle(connected, running=0, idle_timeout=5.0, now=104.0)
    assert not launch.idle(connected, running=1, idle_timeout=5.0, now=200.0)
    starting = launch.LaunchState(id="L2", pool_id=1, state="started", secret_hash="x", idle_since=0.0)
    assert not launch.idle(starting, running=0, idle_timeout=5.0, now=200.0)


def test_a_launched_worker_takes_only_its_pools_modules() -> None:
    worker = Session(id="S1", workspace_id=1, kind="headless", name="w", concurrency=2, provides={}, accepts={},
                     targets={("app.flows", "t"): "task", ("other.flows", "t"): "task"})
    worker.peer = object()
    worker.pool, worker.pool_modules = "gpu", ("app.*",)
    assert placement.choose(pending(), [worker]) is worker
    other = pending(module="other.flows")
    assert placement.choose(other, [worker]) is None
    assert placement.why_unplaced(other, [worker]) == "only workers launched for other pools host other.flows/t"


def test_shipped_code_is_hosted_only_by_a_pool_that_accepts_code_whatever_its_modules() -> None:
    shipped = pending(module="__main__", options={"code": {"hash": "1" * 64, "blob": "2" * 64}})
    assert not launch.hosts(pool(), shipped)  # its workers would not run it
    assert launch.refuses_shipped_code(pool(), shipped) == (
        "pool gpu does not accept shipped code (`coflux pools update gpu --set acceptCode=true` lets it)")
    coding = pool(config={"acceptCode": True}, modules=[])
    assert launch.hosts(coding, shipped) and launch.refuses_shipped_code(coding, shipped) is None
    assert not launch.hosts(coding, pending())  # module code: its modules (none) decide
    # `requires` still has to match, and the workspace.
    assert not launch.hosts(coding, pending(module="__main__", options=shipped.options, requires={"gpu": ["A100"]}))
    assert not launch.hosts(pool(config={"acceptCode": True}, workspace_id=2), shipped)
    gpu = pool(config={"acceptCode": True}, provides={"gpu": ["A100"]})
    assert launch.hosts(gpu, pending(module="__main__", options=shipped.options, requires={"gpu": ["A100"]}))


def test_a_launched_accept_code_worker_takes_its_pools_shipped_steps() -> None:
    worker = Session(id="S1", workspace_id=1, kind="headless", name="w", concurrency=2, provides={}, accepts={},
                     targets={})
    worker.peer = object()
    worker.pool, worker.pool_modules, worker.accepts_code = "cells", (), True
    shipped = pending(module="__main__", options={"code": {"hash": "1" * 64, "blob": "2" * 64}})
    assert placement.choose(shipped, [worker]) is worker
    assert placement.choose(pending(), [worker]) is None  # module code it does not host
    worker.accepts_code = False  # a pool without acceptCode (Pools.attach_session)
    assert placement.choose(shipped, [worker]) is None
    assert placement.why_unplaced(shipped, [worker]) == placement.SHIPPED_CODE_WAITS


def test_a_pool_that_accepts_code_launches_its_workers_with_accept_code() -> None:
    from coflux_server.pools.config import apply_settings, check_modules
    from coflux_server.pools.launchers.base import LaunchSpec

    config = apply_settings("process", {}, {"directory": "/srv", "acceptCode": "true"}, [])
    assert config["acceptCode"] is True and check_modules([], config) == []
    spec = LaunchSpec(launch_id="L1", pool="cells", workspace="default", config=config, modules=[], provides={},
                      accepts={}, server_url="http://x/", token="t", log_dir="/tmp")
    assert "--accept-code" in spec.worker_args()
    plain = LaunchSpec(launch_id="L1", pool="p", workspace="default", config={"directory": "/srv"},
                       modules=["m"], provides={}, accepts={}, server_url="http://x/", token="t", log_dir="/tmp")
    assert "--accept-code" not in plain.worker_args()
