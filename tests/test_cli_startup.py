"""The command line's read-only commands start light: they answer over plain HTTP and import
neither tornado, SQLAlchemy, asyncio nor the notebook stack (what makes `coflux runs inspect`
answer in a fraction of a second; benchmarks/bench_cli.py has the figures). What they print is
what the WebSocket client reports. And `import coflux` loads nothing until a name is used (but
the runtime interface, a module of two stdlib imports, with which the package names its session)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from harness import APPS_DIR, Server, Worker, base_env

WORKSPACE = "startup"
# Imported by none of the read-only commands (the WebSocket client, the server, the notebook side).
HEAVY = ("tornado", "sqlalchemy", "asyncio", "ipywidgets", "anywidget", "plotly", "numpy", "pandas", "IPython",
         "coflux.connection", "coflux.client", "coflux.context", "coflux.target", "coflux.kernel", "coflux.widgets",
         "coflux_server")


def traced(server: Server, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `python -X importtime -m coflux ARGS`: the result (stderr without the import trace)
    and the modules the command imported."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "coflux", *args, "--workspace", WORKSPACE],
                            env=server.env(), cwd=APPS_DIR, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    modules, stderr = set(), []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            modules.add(line.rsplit("|", 1)[1].strip())
        else:
            stderr.append(line)
    result.stderr = "\n".join(stderr)
    return result, modules


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.fixture(scope="module")
def runs(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Finished runs with logs (`observed`) and metrics (`training`), through a real worker."""
    from coflux.client import Client

    worker = Worker(server, ["observing"], concurrency=2, log=tmp_path_factory.mktemp("startup") / "w.log",
                    extra=["--workspace", WORKSPACE]).start()
    worker.wait_registered()
    client = Client(server.url, server.token, workspace=WORKSPACE)
    try:
        observed = client.submit("observing", "observed", 2, 3)
        training = client.submit("observing", "training", 3)
        assert observed.result(timeout=120) == 1
        training.result(timeout=120)
        yield {"observed": observed.id, "training": training.id}
    finally:
        client.close()
        worker.stop()


@pytest.mark.parametrize("command, expected", [
    (["runs", "inspect", "{observed}"], "  step {observed}:2  observing/chatty (task)"),
    (["runs", "inspect", "{observed}", "-o", "json"], '"module": "observing"'),
    (["runs", "result", "{observed}"], "1"),
    (["runs", "result", "{observed}:3"], "1"),  # a step: its latest attempt, followed
    (["runs", "result", "{observed}:3:1", "{observed}:2:1"], "1\n0"),  # attempts
    (["logs", "{observed}", "{observed}:2:1", "--from", "0"], "task 0 starting with 3 lines"),
    (["queue", "--no-watch"], "execution(s) not started"),
    (["sessions", "list"], "  headless  connected  "),
    (["runs", "list", "--limit", "5"], "{training}  observing/training  succeeded"),
    (["runs", "list", "--status", "succeeded", "-o", "json"], '"state": "succeeded"'),
    (["logs", "{observed}"], "fanning out 2 tasks"),
    (["logs", "{observed}", "--search", "starting", "-o", "json"], "task 0 starting with 3 lines"),
    (["metrics", "{training}"], "{training}:2:1  loss"),
    (["assets", "inspect", "{observed}"], "run {observed} has no assets"),
    (["workspaces", "list"], WORKSPACE),
])
def test_read_only_commands_import_no_heavy_module(server: Server, runs: dict[str, str], command: list[str],
                                                   expected: str) -> None:
    result, modules = traced(server, *[part.format(**runs) for part in command])
    assert result.returncode == 0, result.stderr
    assert expected.format(**runs) in result.stdout
    assert "coflux.cli" in modules  # the trace is there, and it is the command's
    assert heavy(modules) == []


def test_waiting_for_a_run_still_uses_the_websocket_client(server: Server, runs: dict[str, str]) -> None:
    """The plain path only answers what it can in one request; waiting is the client's job."""
    result, modules = traced(server, "runs", "result", "--timeout", "0", "Rnotarun")
    assert result.returncode == 2 and "coflux: " in result.stderr and "Traceback" not in result.stderr
    assert "coflux.connection" not in modules  # an unknown run is known as such at once
    from coflux.client import Client

    with Client(server.url, server.token, workspace=WORKSPACE) as client:
        pending = client.submit("observing", "slow_steps", 1, 5.0)
        try:
            result, modules = traced(server, "runs", "result", pending.id)
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout) == pending.result(timeout=60)
            assert "coflux.connection" in modules
        finally:
            pending.cancel()


def test_plain_path_reports_what_the_websocket_client_does(server: Server, runs: dict[str, str]) -> None:
    from coflux.client import Client

    with Client(server.url, server.token, workspace=WORKSPACE) as client:
        snapshot = client.get_run(runs["observed"])
        listed = client.runs("observing/observed", limit=5)
        series = client.metrics(runs["training"])
        logs = client.logs(runs["observed"])
    result, _ = traced(server, "runs", "inspect", runs["observed"], "-o", "json")
    plain = json.loads(result.stdout)
    assert {**plain, "seq": 0} == {**snapshot, "seq": 0}  # the feed position moves with other tests' runs
    result, _ = traced(server, "runs", "list", "--workflow", "observing/observed", "--limit", "5", "-o", "json")
    assert json.loads(result.stdout) == listed
    result, _ = traced(server, "metrics", runs["training"], "-o", "json")
    assert json.loads(result.stdout) == series
    result, _ = traced(server, "logs", runs["observed"], "-o", "json")
    assert [json.loads(line)["message"] for line in result.stdout.splitlines()] == \
        [line["message"] for line in sorted(logs, key=lambda line: (line["at"], line["id"]))]


def test_import_coflux_loads_names_on_first_use() -> None:
    script = textwrap.dedent("""
        import sys
        import coflux as cf
        loaded = sorted(m for m in sys.modules if m.startswith("coflux."))
        assert loaded == ["coflux.runtime"], loaded

        @cf.task(retries=2)
        def double(x: int) -> int:
            return 2 * x

        @cf.workflow()
        def flow(x: int) -> int:
            return double(x)

        assert isinstance(double, cf.Target) and double.module == "__main__"
        assert "tornado" not in sys.modules  # defining targets needs no WebSocket stack
        namespace = {}
        exec("from coflux import *", namespace)
        missing = [name for name in cf.__all__ if name not in namespace]
        assert not missing, missing
        assert set(cf.__all__) <= set(dir(cf))
        assert cf.current_context() is None
        with cf.group("outside an execution"):  # does nothing there
            pass
        for name in ("attach", "ExecutionError", "Metric", "asset", "log_info", "select", "Retries"):
            assert getattr(cf, name) is getattr(sys.modules["coflux"], name)
        try:
            cf.no_such_name
        except AttributeError as exc:
            assert "no_such_name" in str(exc)
        else:
            raise AssertionError("cf.no_such_name resolved")
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], env=base_env(), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
