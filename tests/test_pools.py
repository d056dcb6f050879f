"""Pools through real processes: a `coflux server --launcher process` launches `coflux worker`
processes for due work (tests/apps/poolapp), stops idle ones, drains a disabled pool's, records
a failed launch with its log tail (and says so in the waiting execution's reason), and after a
kill -9 mid-launch re-attaches to what it launched instead of launching again."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import APPS_DIR, Server, base_env, free_port, run_cli, wait_until

pytestmark = pytest.mark.timeout(180)


def stop_launched(server: Server) -> None:
    """Kill the worker processes the server launched that are still running (a stopped server
    leaves them running, to re-attach to them when it starts again)."""
    try:
        for workspace in server.get("api/workspaces")["workspaces"]:
            name = workspace["name"]
            for pool in server.get(f"api/pools?workspace={name}")["pools"]:
                for launch in launches(server, name, pool["name"]):
                    pid = (launch.get("worker") or {}).get("pid")
                    if pid and launch["state"] not in ("exited", "failed", "lost"):
                        try:
                            os.killpg(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
    except OSError:
        pass  # the server is gone: nothing to ask


@pytest.fixture(scope="module")
def pool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("pools")
    server = Server(base / "data", extra=["--launcher", "process"]).start()
    yield server
    stop_launched(server)
    server.stop()


def cli_in(server: Server, workspace: str) -> Callable[..., subprocess.CompletedProcess]:
    def run(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
        return run_cli(*args, env=server.env(COFLUX_WORKSPACE=workspace), timeout=timeout)
    return run


def launches(server: Server, workspace: str, pool: str) -> list[dict]:
    return server.get(f"api/pools/{pool}/launches?workspace={workspace}")["launches"]


def create(cli: Callable[..., subprocess.CompletedProcess], name: str, *flags: str) -> None:
    result = cli("pools", "create", name, "--type", "process", *flags)
    assert result.returncode == 0, result.stderr


def submit(cli: Callable[..., subprocess.CompletedProcess], target: str, *args: str) -> str:
    result = cli("submit", "--no-wait", target, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split()[-1]


def result_of(cli: Callable[..., subprocess.CompletedProcess], run_id: str) -> str:
    result = cli("runs", "result", "--timeout", "60", run_id)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_a_workflow_submitted_with_no_worker_completes_on_a_launched_worker(pool_server: Server) -> None:
    cli = cli_in(pool_server, "launch-one")
    create(cli, "local", "--set", f"directory={APPS_DIR}", "--set", "idleTimeout=60", "--set", "concurrency=3",
           "--modules", "poolapp.flows")
    assert [w for w in pool_server.workers() if w.get("workspace") == "launch-one"] == []
    run_id = submit(cli, "poolapp.flows/hello", '"world"')
    value = result_of(cli, run_id)
    [launch] = launches(pool_server, "launch-one", "local")
    assert value == f"hello world from {launch['id']}"
    assert launch["state"] == "connected" and launch["session"] and launch["worker"]["pid"]
    [session] = [w for w in pool_server.workers() if w["id"] == launch["session"]]
    assert session["concurrency"] == 3  # the pool's `concurrency`
    listed = cli("pools", "launches", "local")
    assert launch["id"] in listed.stdout and "connected" in listed.stdout
    shown = cli("pools", "list")
    assert "local" in shown.stdout and "1 launched" in shown.stdout


def test_a_launch_credential_is_its_pools_worker_only(pool_server: Server) -> None:
    import urllib.error

    cli = cli_in(pool_server, "credentials")
    create(cli, "own", "--set", f"directory={APPS_DIR}", "--modules", "poolapp.flows")
    token = result_of(cli, submit(cli, "poolapp.flows/credential"))
    [launch] = launches(pool_server, "credentials", "own")
    assert pool_server.get("api/whoami", token=token) == {
        "name": launch["id"], "kind": "launch", "workspaces": ["credentials"], "tags": {}, "may_ship_code": False,
        "pool": "own"}
    with pytest.raises(urllib.error.HTTPError) as refused:
        pool_server.get("api/pools?workspace=credentials", token=token)
    assert refused.value.code == 403
    # A worker started by hand with that credential for another workspace is refused.
    worker = subprocess.run([sys.executable, "-m", "coflux", "worker", "--workspace", "elsewhere", "poolapp.flows"],
                            env=base_env(COFLUX_SERVER=pool_server.url, COFLUX_TOKEN=token), cwd=APPS_DIR,
                            capture_output=True, text=True, timeout=20)
    assert worker.returncode != 0
    refusal = worker.stdout + worker.stderr  # said by the token's scope check or the pool's own
    assert "works in its pool's workspace only" in refusal or "may not use workspace 'elsewhere'" in refusal


def test_requires_routes_work_to_the_pool_that_provides_it(pool_server: Server) -> None:
    cli = cli_in(pool_server, "routing")
    create(cli, "cpu", "--set", f"directory={APPS_DIR}", "--modules", "poolapp.flows")
    create(cli, "gpu", "--set", f"directory={APPS_DIR}", "--modules", "poolapp.flows",
           "--provides", "gpu:A100", "--accepts", "gpu:A100,H100")
    value = result_of(cli, submit(cli, "poolapp.flows/needs_gpu"))
    [gpu_launch] = launches(pool_server, "routing", "gpu")
    [cpu_launch] = launches(pool_server, "routing", "cpu")
    assert value == f"trained on {gpu_launch['id']}"  # the task that requires gpu ran on the gpu pool's worker
    assert cpu_launch["state"] == "connected"  # the workflow itself ran on the cpu pool's


def test_an_idle_launched_worker_drains_and_exits(pool_server: Server) -> None:
    cli = cli_in(pool_server, "idle")
    create(cli, "brief", "--set", f"directory={APPS_DIR}", "--set", "idleTimeout=1", "--modules", "poolapp.flows")
    result_of(cli, submit(cli, "poolapp.flows/hello", '"idle"'))
    ended = wait_until(lambda: [lc for lc in launches(pool_server, "idle", "brief") if lc["state"] == "exited"],
                       30, 0.2, "the idle worker to exit")
    assert ended[0]["exit_code"] == 0
    assert "draining" in ended[0]["log_tail"]  # it stopped through the drain protocol


def test_disable_drains_the_pools_workers_and_launches_nothing_new(pool_server: Server) -> None:
    cli = cli_in(pool_server, "disabling")
    create(cli, "steady", "--set", f"directory={APPS_DIR}", "--modules", "poolapp.flows")
    result_of(cli, submit(cli, "poolapp.flows/hello", '"a"'))
    assert cli("pools", "disable", "steady").returncode == 0
    wait_until(lambda: launches(pool_server, "disabling", "steady")[0]["state"] == "exited", 30, 0.2,
               "the disabled pool's worker to exit")
    run_id = submit(cli, "poolapp.flows/hello", '"b"')
    time.sleep(2)
    assert len(launches(pool_server, "disabling", "steady")) == 1
    shown = cli("runs", "inspect", "--no-wait", run_id)
    assert "pool steady is disabled" in shown.stdout, shown.stdout
    assert cli("pools", "enable", "steady").returncode == 0
    assert result_of(cli, run_id).startswith("hello b from L")


def test_a_bad_directory_is_a_failed_launch_with_its_log_tail_and_the_runs_reason(pool_server: Server) -> None:
    cli = cli_in(pool_server, "broken")
    # The directory exists, but the module is not there: the worker exits before it connects.
    create(cli, "bad", "--set", f"directory={APPS_DIR / 'badimport'}", "--set", "env.PYTHONPATH=/nowhere",
           "--modules", "poolapp.flows")
    run_id = submit(cli, "poolapp.flows/hello", '"x"')
    failed = wait_until(lambda: [lc for lc in launches(pool_server, "broken", "bad") if lc["state"] == "failed"],
                        60, 0.2, "a failed launch")
    assert "exited with code 1 before connecting" in failed[0]["error"]
    assert "poolapp" in failed[0]["log_tail"]  # the worker's own words: the module cannot be imported
    shown = cli("runs", "inspect", "--no-wait", run_id)
    assert "pool bad: launch failed: the worker exited with code 1 before connecting" in shown.stdout, shown.stdout
    # A directory that does not exist: the launcher refuses at once.
    assert cli("pools", "update", "bad", "--set", "directory=/no/such/place").returncode == 0
    wait_until(lambda: any("does not exist" in (lc["error"] or "") for lc in launches(pool_server, "broken", "bad")),
               30, 0.2, "the launch in a missing directory to fail")
    logged = cli("pools", "launches", "bad", "--logs")
    assert "directory '/no/such/place' does not exist" in logged.stdout
    # Retried with a backoff, not at once and forever.
    assert len(launches(pool_server, "broken", "bad")) < 8
    cli("pools", "disable", "bad")


def test_bad_pool_definitions_are_refused_in_one_line(pool_server: Server) -> None:
    cli = cli_in(pool_server, "refusals")
    unknown = cli("pools", "create", "p", "--type", "process", "--set", "directory=/tmp", "--set", "colour=red",
                  "--modules", "m")
    assert unknown.returncode == 2 and "process pools have no field 'colour'" in unknown.stderr
    missing = cli("pools", "create", "p", "--type", "docker", "--modules", "m")
    assert missing.returncode == 2 and "needs --set image=" in missing.stderr
    listed = cli("pools", "list")  # nothing was recorded, not even the workspace
    assert listed.returncode == 2 and "no workspace named 'refusals'" in listed.stderr


def test_export_and_import_round_trip(pool_server: Server, tmp_path: Path) -> None:
    cli = cli_in(pool_server, "porting")
    create(cli, "one", "--set", f"directory={APPS_DIR}", "--set", "env.GREETING=hi", "--set", "maxWorkers=2",
           "--modules", "poolapp.flows", "--provides", "zone:eu")
    assert cli("pools", "disable", "one").returncode == 0
    path = tmp_path / "pools.toml"
    assert cli("pools", "export", "-o", str(path), "--only", "one").returncode == 0
    text = path.read_text()
    assert "[pools.one]" in text and 'GREETING = "hi"' in text
    assert cli("pools", "delete", "one").returncode == 0
    imported = cli("pools", "import", str(path))
    assert imported.returncode == 0, imported.stderr
    shown = cli("pools", "get", "one").stdout
    assert "env.GREETING = hi" in shown and "maxWorkers = 2" in shown and "zone:eu" in shown and "disabled" in shown
    updated = cli("pools", "update", "one", "--no-provides", "--unset", "env.GREETING")
    assert updated.returncode == 0
    shown = cli("pools", "get", "one").stdout
    assert "GREETING" not in shown and "provides: -" in shown


def test_a_server_killed_mid_launch_does_not_launch_twice(tmp_path: Path) -> None:
    # A python that takes 3 s to start: the server is killed after it recorded the launch and
    # started the process, before the worker connected.
    slow = tmp_path / "slowpython"
    slow.write_text(f"#!/bin/sh\nsleep 3\nexec {sys.executable} \"$@\"\n")
    slow.chmod(slow.stat().st_mode | stat.S_IEXEC)
    port = free_port()
    server = Server(tmp_path / "data", port=port, extra=["--launcher", "process"]).start()
    try:
        cli = cli_in(server, "default")
        create(cli, "slow", "--set", f"directory={APPS_DIR}", "--set", f"python={slow}", "--modules", "poolapp.flows")
        run_id = submit(cli, "poolapp.flows/hello", '"again"')
        wait_until(lambda: [lc for lc in launches(server, "default", "slow") if lc["state"] == "started"], 20, 0.05,
                   "the launch to start")
        server.kill()
        server.start()
        value = result_of(cli_in(server, "default"), run_id)
        [launch] = launches(server, "default", "slow")  # one launch only, before and after the kill
        assert value == f"hello again from {launch['id']}"
        assert launch["state"] == "connected"
    finally:
        stop_launched(server)
        server.stop()


def test_only_allowed_launcher_types_run(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()  # no --launcher: pools launch nothing
    try:
        cli = cli_in(server, "default")
        create(cli, "local", "--set", f"directory={APPS_DIR}", "--modules", "poolapp.flows")
        run_id = submit(cli, "poolapp.flows/hello", '"x"')
        time.sleep(1)
        assert launches(server, "default", "local") == []
        shown = cli("runs", "inspect", "--no-wait", run_id)
        assert "this server does not run process launchers (start it with --launcher process)" in shown.stdout
    finally:
        server.stop()
    bad = subprocess.run([sys.executable, "-m", "coflux", "server", "--launcher", "ssh", "--port", "0",
                          "--data-dir", str(tmp_path / "other")], env=base_env(), capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode == 2 and "--launcher must be process, docker or kubernetes" in bad.stderr


def test_the_same_from_python_and_launches_watched_as_they_change(pool_server: Server) -> None:
    from coflux.client import Client
    from coflux.pools_api import PoolsError

    with Client(pool_server.url, pool_server.token, workspace="python") as client:
        created = client.pools.create("py", "process", set={"directory": str(APPS_DIR), "idleTimeout": 1},
                                      modules=["poolapp.flows"], provides={"zone": ["eu"]})
        assert created["enabled"] and created["provides"] == {"zone": ["eu"]}
        with pytest.raises(PoolsError, match="exists in workspace 'python'"):
            client.pools.create("py", "process", set={"directory": "/"}, modules=["m"])
        watch = subprocess.Popen([sys.executable, "-m", "coflux", "pools", "launches", "py", "--watch"],
                                 env=pool_server.env(COFLUX_WORKSPACE="python"), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        try:
            assert client.submit("poolapp.flows", "hello", "py").result(timeout=60).startswith("hello py from L")
            states = []
            while "exited" not in states:  # launching/started, connected, then idle: stopping, exited
                line = watch.stdout.readline()  # type: ignore[union-attr]
                assert line, "the watch ended"
                states.append(line.split()[1])
            assert "connected" in states and states.index("connected") < states.index("exited")
        finally:
            watch.kill()
            watch.wait(10)
        [launch] = client.pools.launches("py")
        assert launch["state"] == "exited" and launch["exit_code"] == 0
        assert client.pools.update("py", provides=None)["provides"] == {}
        assert [p["name"] for p in client.pools.list()] == ["py"]
        client.pools.delete("py")
        assert client.pools.list() == []


def test_a_paused_workspace_launches_nothing_until_resumed(pool_server: Server) -> None:
    cli = cli_in(pool_server, "pool-paused")
    create(cli, "local", "--set", f"directory={APPS_DIR}", "--set", "idleTimeout=60", "--modules", "poolapp.flows")
    assert cli("workspaces", "pause", "pool-paused").returncode == 0
    run_id = submit(cli, "poolapp.flows/hello", '"night"')
    reason = "workspace pool-paused is paused (`coflux workspaces resume` lets it go on)"
    queue = json.loads(cli("queue", "-o", "json").stdout)["queue"]
    assert [e["waiting"] for e in queue if e["run"] == run_id] == [reason], queue
    # A pool pass runs at each schedule; give a few a chance to (wrongly) launch.
    time.sleep(1.5)
    assert launches(pool_server, "pool-paused", "local") == []
    assert cli("workspaces", "resume", "pool-paused").returncode == 0
    value = result_of(cli, run_id)
    [launch] = launches(pool_server, "pool-paused", "local")
    assert value == f"hello night from {launch['id']}"


# A task as a kernel ships it (coflux/shipping.py): pickled by value, stored in the blob store,
# named in the step's `options.code`; it says where it ran.
SHIPPED_SOURCE = ("def where(x):\n    import os\n"
                  "    return ['shipped', x, os.environ.get('COFLUX_LAUNCH'), os.getpid()]\n")


def ship_where(server: Server) -> dict:
    import cloudpickle

    from coflux.blobs import BlobClient

    namespace: dict = {"__name__": "__main__"}  # a notebook cell's function: cloudpickle takes it by value
    exec(SHIPPED_SOURCE, namespace)
    data = cloudpickle.dumps(namespace["where"])
    return {"hash": "5" * 64, "blob": BlobClient(server.url, server.token).put_bytes(data)}


def submit_shipped(server: Server, workspace: str, module: str, target: str, arg: object) -> str:
    import urllib.request

    body = {"workspace": workspace, "module": module, "target": target, "args": [arg],
            "options": {"code": ship_where(server)}}
    request = urllib.request.Request(server.url + "api/runs", data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"token {server.token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["run"]


def test_shipped_code_runs_on_a_worker_launched_by_a_pool_that_accepts_code(pool_server: Server) -> None:
    cli = cli_in(pool_server, "shipping")
    # No modules: its workers run shipped code alone. The step's module (the kernel's `__main__`)
    # is hosted by no pool and registered by no worker: its code travels with it.
    create(cli, "cells", "--set", f"directory={APPS_DIR}", "--set", "acceptCode=true", "--set", "idleTimeout=60")
    assert "acceptCode = True" in cli("pools", "get", "cells").stdout
    assert [w for w in pool_server.workers() if w.get("workspace") == "shipping"] == []
    run_id = submit_shipped(pool_server, "shipping", "__main__", "where", 7)
    value = result_of(cli, run_id)
    all_launches = launches(pool_server, "shipping", "cells")
    assert len(all_launches) == 1, all_launches
    [launch] = all_launches
    assert value == ["shipped", 7, launch["id"], value[3]]  # the shipped function ran, in the launched worker
    assert value[3] != os.getpid()
    [session] = [w for w in pool_server.workers() if w["id"] == launch["session"]]
    assert session["accepts_code"] is True  # launched with `coflux worker --accept-code`


def test_a_pool_without_accept_code_launches_nothing_for_shipped_code(pool_server: Server) -> None:
    cli = cli_in(pool_server, "shipping-refused")
    create(cli, "plain", "--set", f"directory={APPS_DIR}", "--set", "idleTimeout=60", "--modules", "poolapp.flows")
    # A shipped step of a module the pool hosts: its workers would not run shipped code.
    run_id = submit_shipped(pool_server, "shipping-refused", "poolapp.flows", "hello", 8)
    time.sleep(2)
    assert launches(pool_server, "shipping-refused", "plain") == []
    shown = cli("runs", "inspect", "--no-wait", run_id)
    assert ("pool plain does not accept shipped code (`coflux pools update plain --set acceptCode=true` lets it)"
            in shown.stdout), shown.stdout
    # Said so, done so: the pool's worker now runs it (the shipped function, not poolapp's `hello`).
    assert cli("pools", "update", "plain", "--set", "acceptCode=true").returncode == 0
    value = result_of(cli, run_id)
    [launch] = launches(pool_server, "shipping-refused", "plain")
    assert value[:3] == ["shipped", 8, launch["id"]]
    # Without modules, a pool must accept code (it would host nothing else).
    refused = cli("pools", "create", "empty", "--type", "process", "--set", f"directory={APPS_DIR}")
    assert refused.returncode == 2 and "unless it sets acceptCode=true" in refused.stderr
    from coflux.client import Client

    with Client(pool_server.url, pool_server.token, workspace="shipping-refused") as client:
        created = client.pools.create("code-only", "process", set={"directory": str(APPS_DIR), "acceptCode": True})
        assert created["modules"] == [] and created["config"]["acceptCode"] is True
        client.pools.delete("code-only")
