"""Clean failures and returned executions (issue 7, items 4 and 5), through real processes:
`coflux worker` on modules that fail to import, a script using `Client` that exits without
closing it, `coflux runs inspect` on executions that are assigned or running, and workflows that
return `Execution` handles, whose values `coflux submit`, `coflux runs result` and `Run.result()`
print. Each runs on a worker with the default concurrency and with `--concurrency 1`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from harness import APPS_DIR, Server, Worker, base_env, run_cli, wait_until

CONCURRENCY = [None, 1]  # None: the default (CPU count)
CONCURRENCY_IDS = ["default-concurrency", "concurrency-1"]


def _concurrency_flags(concurrency: int | None) -> list[str]:
    return [] if concurrency is None else ["--concurrency", str(concurrency)]


def _run_script(source: str, env: dict[str, str], cwd: Path, timeout: float = 120.0) -> subprocess.CompletedProcess:
    path = cwd / "script.py"
    path.write_text(textwrap.dedent(source))
    return subprocess.run([sys.executable, str(path)], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


# ------------------------------------------------------------------ 1. modules that fail at import

USER_FILE = str(APPS_DIR / "badimport")


def _start_worker_on(server: Server, module: str, concurrency: int | None, *,
                     env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "coflux", "worker", "--server", server.url, "--token", server.token or "",
            *_concurrency_flags(concurrency), module]
    return subprocess.run(args, env=env or base_env(), cwd=APPS_DIR, capture_output=True, text=True,
                          timeout=90, stdin=subprocess.DEVNULL)


def _assert_only_user_frames(stderr: str) -> None:
    """Every frame shown is the user's: none of coflux, importlib or the frozen bootstrap."""
    frames = [line for line in stderr.splitlines() if line.lstrip().startswith("File ")]
    coflux_dir = str(Path(__file__).resolve().parent.parent / "coflux") + os.sep
    for line in frames:
        assert coflux_dir not in line and "importlib" not in line and "<frozen" not in line, stderr


@pytest.mark.parametrize("concurrency", CONCURRENCY, ids=CONCURRENCY_IDS)
@pytest.mark.parametrize("module, headline, frames", [
    ("badimport.missing_setting", "KeyError: 'database_url'",
     ['missing_setting.py", line 16, in <module>', 'missing_setting.py", line 9, in load_setting']),
    ("badimport.helpers_fail", "RuntimeError: the helper needs COFLUX_TEST_NEVER_SET",
     ['helpers_fail.py", line 4, in <module>', '_broken_helper.py", line 5, in check_environment']),
    ("badimport.missing_dependency",
     "ModuleNotFoundError: No module named 'coflux_test_package_that_does_not_exist'",
     ['missing_dependency.py", line 3, in <module>']),
    ("badimport.exits", "module called sys.exit(3) while being imported", ['exits.py", line 5, in <module>']),
])
def test_import_failure_exits_1_with_the_users_frames(server, concurrency, module, headline, frames):
    result = _start_worker_on(server, module, concurrency)
    assert result.returncode == 1, result.stdout + result.stderr
    first = result.stderr.splitlines()[0]
    assert first == f"coflux worker: cannot import {module}: {headline}", result.stderr
    for frame in frames:
        assert frame in result.stderr
    assert USER_FILE in result.stderr
    _assert_only_user_frames(result.stderr)
    assert len(result.stderr.splitlines()) < 20, result.stderr  # short: no pages of internals
    assert "connected" not in result.stdout  # it stopped before registering anything


@pytest.mark.parametrize("concurrency", CONCURRENCY, ids=CONCURRENCY_IDS)
def test_syntax_error_names_file_and_line(server, concurrency, tmp_path):
    (tmp_path / "broken_syntax.py").write_text("import coflux as cf\n\n\n@cf.workflow()\ndef f():\n    return (1 +\n")
    env = base_env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    result = _start_worker_on(server, "broken_syntax", concurrency, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("coflux worker: cannot import broken_syntax: SyntaxError: "), result.stderr
    assert f'{tmp_path / "broken_syntax.py"}", line 6' in result.stderr
    _assert_only_user_frames(result.stderr)


@pytest.mark.parametrize("concurrency", CONCURRENCY, ids=CONCURRENCY_IDS)
def test_missing_module_says_where_it_looked(server, concurrency):
    result = _start_worker_on(server, "badimport.nowhere", concurrency)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith(
        "coflux worker: cannot import badimport.nowhere: ModuleNotFoundError: No module named 'badimport.nowhere'")
    assert "PYTHONPATH" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("concurrency", CONCURRENCY, ids=CONCURRENCY_IDS)
def test_import_failure_in_pool_process_exits_1_with_the_users_frames(server, concurrency):
    """The module imports in the worker's parent but raises in its (spawned) pool processes."""
    result = _start_worker_on(server, "badimport.child_only", concurrency)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ValueError: this module refuses to load in a pool process" in result.stderr
    assert 'child_only.py", line 11, in check_process' in result.stderr
    _assert_only_user_frames(result.stderr)


# ------------------------------------------------------------------ 2. workers for `returning`


@pytest.fixture(scope="module", params=CONCURRENCY, ids=CONCURRENCY_IDS)
def returning(request, server: Server, tmp_path_factory) -> Iterator[SimpleNamespace]:
    """A worker for tests/apps/returning.py in a workspace of its own (so the two concurrencies
    never share work), and the CLI and the environment for that workspace."""
    workspace = f"clean-{request.param or 'default'}"
    logs = tmp_path_factory.mktemp("returning")
    worker = Worker(server, ["returning"], concurrency=request.param, log=logs / "worker.log",
                    extra=["--workspace", workspace]).start()
    env = server.env(COFLUX_WORKSPACE=workspace)
    try:
        worker.wait_registered()

        def cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
            return run_cli(*args, env=env, timeout=timeout)

        yield SimpleNamespace(worker=worker, workspace=workspace, env=env, cli=cli, dir=logs)
    finally:
        worker.stop()


EXPECTED = {
    ("one", ("4",)): 16,
    ("many", ("3",)): {"squares": [0, 1, 4], "first": 0, "pair": [0, 3], "plain": "text"},
    ("chained", ("5",)): 25,
    ("map_reduce", (json.dumps(["a b a", "b c"]),)): {
        "parts": [{"a": 2, "b": 1}, {"b": 1, "c": 1}], "total": {"a": 2, "b": 2, "c": 1}},
}


def test_submit_prints_values_of_returned_executions(returning):
    for (workflow, args), expected in EXPECTED.items():
        result = returning.cli("submit", f"returning/{workflow}", *args)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == expected, workflow
        assert "<execution" not in result.stdout


def test_runs_result_prints_values_of_returned_executions(returning):
    run_ids = {}
    for (workflow, args), expected in EXPECTED.items():
        result = returning.cli("submit", "--no-wait", f"returning/{workflow}", *args)
        assert result.returncode == 0, result.stderr
        run_ids[workflow] = (result.stdout.strip(), expected)
    for workflow, (run_id, expected) in run_ids.items():
        result = returning.cli("runs", "result", "--timeout", "60", run_id)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == expected, workflow
    # The recorded result of the workflow itself is still the reference (what inspect shows).
    run = json.loads(returning.cli("runs", "inspect", "--no-wait", run_ids["one"][0], "-o", "json").stdout)
    assert run["steps"][0]["executions"][0]["result"]["value"]["refs"][0]["target"] == "square"


def test_a_failed_returned_execution_fails_the_result(returning):
    result = returning.cli("submit", "returning/failing", '"boom"')
    assert result.returncode == 1
    assert "ValueError: boom" in result.stderr
    assert result.stdout == ""


def test_run_result_in_python_resolves_and_the_script_exits_cleanly(returning):
    """`Run.result()` gives the values (the same resolution as the CLI); the script never closes
    its Client, and still exits with 0 and nothing on stderr."""
    result = _run_script("""
        import json
        import coflux as cf
        from coflux.client import Client

        client = Client()
        print(json.dumps({
            "one": client.submit("returning", "one", 4).result(timeout=60),
            "many": client.submit("returning", "many", 3).result(timeout=60),
            "chained": client.submit("returning", "chained", 5).result(timeout=60),
            "map_reduce": client.submit("returning", "map_reduce", ["a b a", "b c"]).result(timeout=60),
        }))
        try:
            client.submit("returning", "failing", "boom").result(timeout=60)
        except ValueError as exc:
            assert isinstance(exc, cf.ExecutionError), type(exc)
            print("raised", exc)
        # no client.close(): the program just ends
    """, returning.env, returning.dir)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    values = json.loads(lines[0])
    assert values["one"] == 16
    assert values["many"] == {"squares": [0, 1, 4], "first": 0, "pair": [0, 3], "plain": "text"}
    assert values["chained"] == 25
    assert values["map_reduce"]["total"] == {"a": 2, "b": 2, "c": 1}
    assert lines[1].startswith("raised") and "boom" in lines[1]


def _inspect_line(returning, run_id: str) -> str:
    text = returning.cli("runs", "inspect", "--no-wait", run_id)
    assert text.returncode == 0, text.stderr
    return next(ln for ln in text.stdout.splitlines() if ln.strip().startswith(f"{run_id}:1:1"))


def _first_execution(returning, run_id: str) -> dict:
    run = json.loads(returning.cli("runs", "inspect", "--no-wait", run_id, "-o", "json").stdout)
    return run["steps"][0]["executions"][0]


def test_inspect_shows_assigned_and_running_executions(returning):
    """An execution handed to a worker shows as assigned to it, then as running on it once the
    worker reports it started; never as pending. (The worker is frozen with SIGSTOP while the
    run is submitted, so it holds the execution without starting it.)"""
    session = returning.worker.session()
    group = returning.worker.proc.pid  # the worker and its pool share a process group
    os.killpg(group, signal.SIGSTOP)
    try:
        submitted = returning.cli("submit", "--no-wait", "returning/slow", "120")
        assert submitted.returncode == 0, submitted.stderr
        run_id = submitted.stdout.strip()

        def in_state(state: str):
            def check() -> dict | None:
                execution = _first_execution(returning, run_id)
                assert execution["state"] in ("pending", "assigned", "running"), execution
                return execution if execution["state"] == state else None
            return check

        execution = wait_until(in_state("assigned"), 60, interval=0.2, message="the slow run to be assigned")
        assert execution["result"] is None and execution["started_at"] is None
        assert execution["worker"] == session["name"]
        line = _inspect_line(returning, run_id)
        assert "pending" not in line
        assert re.search(rf"assigned to {re.escape(session['name'])} at \d\d:\d\d:\d\d", line), line
    finally:
        os.killpg(group, signal.SIGCONT)
    try:
        execution = wait_until(in_state("running"), 60, interval=0.2, message="the slow run to be running")
        assert execution["result"] is None and execution["started_at"]
        assert execution["worker"] == session["name"]
        line = _inspect_line(returning, run_id)
        assert "pending" not in line
        assert re.search(rf"running since \d\d:\d\d:\d\d on {re.escape(session['name'])}", line), line
    finally:
        cancelled = returning.cli("runs", "cancel", run_id)
        assert cancelled.returncode == 0, cancelled.stderr
    assert _first_execution(returning, run_id)["state"] == "cancelled"


# ------------------------------------------------------------------ 3. a Client left open


def test_script_exits_cleanly_while_its_client_reconnects(tmp_path):
    """The server goes away while a script's Client is connected; the script ends (without
    closing the Client) while its connection thread is trying to reconnect: exit 0, no noise.
    (Before the fix, the reconnect's DNS lookup ran in a thread pool already shut down for the
    exit: `RuntimeError: cannot schedule new futures after shutdown` from the connection thread.
    A slow exit hook, like multiprocessing joining its children, leaves it the time to try.)"""
    server = Server(tmp_path / "data").start()
    flag = tmp_path / "server-stopped"
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        import atexit, os, time
        from coflux.client import Client

        client = Client()
        client.workspaces()
        print("connected", flush=True)
        while not os.path.exists({str(flag)!r}):
            time.sleep(0.02)
        while client.connection.connected:
            time.sleep(0.02)
        atexit.register(time.sleep, 1.5)  # other exit work while the connection retries
    """))
    proc = subprocess.Popen([sys.executable, str(script)], env=server.env(), cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "connected"
        server.stop()
        flag.touch()
        stdout, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, stderr
        assert stderr == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        server.stop()
