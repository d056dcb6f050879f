"""The `coflux` command line, run as a user runs it: installation, server, worker, submit, runs,
and where settings come from (flags > COFLUX_* environment > coflux.toml)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import urllib.error
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from harness import (
    APPS_DIR,
    TOKEN,
    Server,
    Worker,
    base_env,
    free_port,
    inspect_run,
    run_cli,
    stop_process,
    wait_until,
)

RUN_ID = re.compile(r"^R[A-Za-z0-9]+$")

# ------------------------------------------------------------------ 1. installation


def test_console_script_is_installed():
    scripts = [ep for ep in entry_points(group="console_scripts") if ep.name == "coflux"]
    assert [ep.value for ep in scripts] == ["coflux.cli:main"]
    executable = Path(sys.executable).parent / "coflux"
    assert executable.exists() or shutil.which("coflux")
    result = subprocess.run([str(executable) if executable.exists() else "coflux", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("server", "worker", "submit", "runs"):
        assert command in result.stdout


def test_python_m_coflux_and_import():
    result = run_cli("runs", "--help", env=base_env())
    assert result.returncode == 0 and "result" in result.stdout and "inspect" in result.stdout
    result = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import coflux as cf
        names = ["workflow", "task", "stub", "Execution", "ExecutionError", "ExecutionCancelled",
                 "ExecutionTimeout", "Cache", "Defer", "Retries", "group"]
        missing = [n for n in names if not hasattr(cf, n)]
        assert not missing, missing
        from coflux.client import Client
        print("ok")
    """)], capture_output=True, text=True, timeout=60, cwd=APPS_DIR.parent.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# ------------------------------------------------------------------ 2. server


def _health(server: Server, token: str | None) -> int:
    try:
        server.get("api/health", token=token or "")
        return 200
    except urllib.error.HTTPError as exc:
        return exc.code


def test_server_defaults_data_dir_and_generated_token(tmp_path):
    srv = Server(None, token=None, cwd=tmp_path).start()
    try:
        assert srv.url == f"http://127.0.0.1:{srv.port}/"
        assert (tmp_path / ".coflux" / "coflux.db").exists()  # default ./.coflux
        match = wait_until(lambda: re.search(r"^token: (\S+)", srv.output(), re.M), 10,
                           message="the generated token to be printed")
        generated = match.group(1)
        assert f"COFLUX_TOKEN={generated}" in srv.output()
        assert _health(srv, None) == 401  # no token (a wrong one: 403)
        assert _health(srv, "wrong") == 403
        assert _health(srv, generated) == 200
    finally:
        srv.stop()
    assert srv.proc.returncode is not None


def test_server_no_auth_db_url_and_host(tmp_path):
    db = tmp_path / "elsewhere" / "store.db"
    srv = Server(None, token=None, cwd=tmp_path,
                 extra=["--no-auth", "--db-url", f"sqlite:///{db}", "--host", "127.0.0.1"]).start()
    try:
        assert srv.url.startswith("http://127.0.0.1:")
        assert "authentication is disabled" in srv.output()
        assert db.exists()
        assert not (tmp_path / ".coflux").exists()  # --db-url replaces the data directory
        assert _health(srv, None) == 200
        # The CLI talks to it without any token.
        result = run_cli("runs", "inspect", "Rnothere", "--server", srv.url, env=base_env())
        assert result.returncode != 0
        assert "no run 'Rnothere'" in result.stderr and "Traceback" not in result.stderr
    finally:
        srv.stop()


def test_server_port_in_use(server, tmp_path):
    result = run_cli("server", "--port", str(server.port), "--data-dir", str(tmp_path / "d"), "--token", "x",
                     env=base_env(), timeout=60)
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{server.port}" in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------ 2. worker


def test_worker_concurrency_defaults_to_cpu_count_plus_four(server, workers, tmp_path):
    worker = Worker(server, ["other.workflows"], concurrency=None, log=tmp_path / "w.log").start()
    try:
        session = worker.wait_registered()
        assert session["concurrency"] == os.cpu_count() + 4  # Coflux's default: most executions wait on I/O
        assert f"(concurrency {os.cpu_count() + 4})" in worker.output()
        assert "other.workflows/random_int" in session["targets"]
    finally:
        worker.stop()


def test_worker_unknown_module(server):
    result = run_cli("worker", "--server", server.url, "--token", TOKEN, "no_such_module.workflows",
                     env=base_env(), timeout=60)
    assert result.returncode != 0
    assert "cannot import" in result.stderr and "no_such_module" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_needs_a_module(server, tmp_path):
    result = run_cli("worker", "--server", server.url, "--token", TOKEN, env=base_env(), cwd=tmp_path)
    assert result.returncode != 0
    assert "at least one module" in result.stderr


# ------------------------------------------------------------------ 2. submit and runs


def test_submit_prints_result_and_progress(cli):
    result = cli("submit", "myapp.workflows/process", '"https://x"')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == "https://x has 9 characters"
    run_id = re.search(r"^run (R\w+) submitted$", result.stderr, re.M).group(1)
    assert f"{run_id}: 3 step(s): 3 value" in result.stderr


def test_submit_no_wait_then_runs_result_and_inspect(cli):
    ids = []
    for url in ("a", "abcd"):
        result = cli("submit", "--no-wait", "myapp.workflows/process", json.dumps(url))
        assert result.returncode == 0, result.stderr
        assert RUN_ID.match(result.stdout.strip()), result.stdout
        ids.append(result.stdout.strip())

    result = cli("runs", "result", *ids)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        "a has 1 characters", "abcd has 4 characters"]

    result = cli("runs", "inspect", "--no-wait", ids[0])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"run {ids[0]}  myapp.workflows/process  workspace default")
    assert f"  step {ids[0]}:2  myapp.workflows/fetch_data (task)  parent {ids[0]}:1:1" in lines
    assert any(line.startswith(f"    {ids[0]}:1:1 ") and 'value "a has 1 characters"' in line for line in lines)

    result = cli("runs", "inspect", "--no-wait", *ids, "-o", "json")
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout)
    assert [r["id"] for r in runs] == ids
    assert [len(r["steps"]) for r in runs] == [3, 3]


def test_runs_result_of_unfinished_run(cli, tmp_path):
    gate = tmp_path / "gate"
    result = cli("submit", "--no-wait", "myapp.workflows/gated", json.dumps(str(gate)), "1")
    run_id = result.stdout.strip()
    try:
        wait_until(lambda: Path(f"{gate}.started").exists(), 60, message="the gate task to start")
        result = cli("runs", "result", "--timeout", "0.2", run_id)
        assert result.returncode == 3
        assert "run has not finished" in result.stderr
        run = inspect_run(cli, run_id)
        assert run["steps"][0]["executions"][0]["result"] is None
    finally:
        gate.touch()
    result = cli("runs", "result", run_id)
    assert result.returncode == 0 and json.loads(result.stdout) == {"before": 1, "gate": 100, "after": 1}


def test_runs_result_follows_a_returned_execution(cli):
    """A finished run whose value is another execution shows that execution's value, as
    `Run.result()` does (the plain HTTP path hands such a run to the WebSocket client)."""
    run_id = cli("submit", "--no-wait", "myapp.workflows/returns_execution", "7").stdout.strip()
    for _ in range(2):  # waiting for it, then once it is finished
        result = cli("runs", "result", run_id)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == 49


@pytest.mark.parametrize("command", [["runs", "inspect"], ["runs", "result"], ["logs"], ["metrics"]])
def test_read_only_commands_name_an_unknown_run(cli, command):
    for run_id in ("Rnothere", "not-a-run", "R/../api"):
        result = cli(*command, run_id)
        assert result.returncode == 2, result.stdout
        assert result.stdout == ""
        assert f"no run {run_id!r}" in result.stderr or f"no execution '{run_id}:1:1'" in result.stderr
        assert "Traceback" not in result.stderr


# ------------------------------------------------------------------ configuration precedence


@pytest.fixture()
def toml_dir(tmp_path, server):
    """A working directory whose coflux.toml names the session server and its token."""
    (tmp_path / "coflux.toml").write_text(f'server = "{server.url}"\ntoken = "{server.token}"\n')
    return tmp_path


def test_settings_from_coflux_toml(cli, toml_dir):
    run_id = cli("submit", "--no-wait", "myapp.workflows/process", '"toml"').stdout.strip()
    result = run_cli("runs", "result", run_id, env=base_env(), cwd=toml_dir)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == "toml has 4 characters"


def test_environment_beats_coflux_toml(toml_dir):
    result = run_cli("runs", "inspect", "Rnothere", env=base_env(COFLUX_TOKEN="wrong"), cwd=toml_dir)
    assert result.returncode != 0
    assert "refused the token" in result.stderr
    dead = f"http://127.0.0.1:{free_port()}/"
    result = run_cli("runs", "inspect", "Rnothere", env=base_env(COFLUX_SERVER=dead), cwd=toml_dir)
    assert result.returncode != 0
    assert f"cannot connect to the coflux server at {dead}" in result.stderr


def test_flags_beat_environment(server, toml_dir):
    dead = f"http://127.0.0.1:{free_port()}/"
    env = base_env(COFLUX_SERVER=dead, COFLUX_TOKEN="wrong")
    result = run_cli("runs", "inspect", "Rnothere", "--server", server.url, "--token", server.token, env=env,
                     cwd=toml_dir)
    assert result.returncode != 0
    assert "no run 'Rnothere'" in result.stderr  # it reached the server and was let in


def test_worker_reads_coflux_toml(server, workers, tmp_path):
    (tmp_path / "tomlapp.py").write_text(textwrap.dedent('''
        import coflux as cf

        @cf.workflow()
        def hello(name: str) -> str:
            return f"hello {name}"
    '''))
    (tmp_path / "coflux.toml").write_text(textwrap.dedent(f'''
        server = "{server.url}"
        token = "{server.token}"
        modules = ["tomlapp"]

        [worker]
        concurrency = 1
    '''))
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "coflux", "worker"], cwd=tmp_path, env=base_env(),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        session = wait_until(lambda: next((w for w in server.workers() if w["connected"]
                                           and w["name"].endswith(f":{proc.pid}")), None), 60,
                             message="the worker configured by coflux.toml to register")
        assert session["targets"] == ["tomlapp/hello"]
        assert session["concurrency"] == 1
        result = run_cli("submit", "tomlapp/hello", '"toml"', env=base_env(), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == "hello toml"
    finally:
        stop_process(proc)
        log.close()


def test_server_reads_token_from_coflux_toml(tmp_path):
    # One coflux.toml for everything: the server must accept the token the clients read from it.
    (tmp_path / "coflux.toml").write_text('token = "from-the-toml"\n')
    srv = Server(tmp_path / "data", token=None, cwd=tmp_path).start()
    try:
        srv.token = "from-the-toml"
        assert "token:" not in srv.output()  # none generated
        assert _health(srv, "from-the-toml") == 200
        result = run_cli("runs", "inspect", "Rnothere", "--server", srv.url, env=base_env(), cwd=tmp_path)
        assert "no run 'Rnothere'" in result.stderr
    finally:
        srv.stop()


def test_server_settings_from_environment_and_toml_section(tmp_path):
    (tmp_path / "coflux.toml").write_text('[server]\ndata_dir = "from-toml"\n')
    env = base_env(COFLUX_TOKEN="env-token", COFLUX_PORT="0")
    log = tmp_path / "server.log"
    out = open(log, "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "coflux", "server"], cwd=tmp_path, env=env, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        line = wait_until(lambda: re.search(r"coflux server ready at (\S+)", log.read_text()), 30,
                          message="the server configured by environment and coflux.toml")
        assert (tmp_path / "from-toml" / "coflux.db").exists()
        srv = Server(None, token="env-token", cwd=tmp_path)
        srv.url = line.group(1)
        assert _health(srv, "env-token") == 200
        assert "token:" not in log.read_text()
    finally:
        stop_process(proc)
        out.close()


# ------------------------------------------------------------------ logs --search over several pages


def test_logs_search_pages_through_every_match_of_the_run(server, tmp_path):
    """`coflux logs R --search W` prints every line of R with the word, once each and in order,
    across the command's pages (5,000 lines each) and whatever other runs say."""
    worker = Worker(server, ["observing"], concurrency=2, log=tmp_path / "w.log",
                    extra=["--workspace", "search"]).start()
    try:
        worker.wait_registered()
        env = server.env(COFLUX_WORKSPACE="search")
        runs = []
        for lines in (6000, 10):  # the second run says "line" too: none of it may show up in the first's search
            result = run_cli("submit", "observing/observed", "2", str(lines), env=env)
            assert result.returncode == 0, result.stderr
            runs.append(re.search(r"^run (R\w+) submitted$", result.stderr, re.M).group(1))
    finally:
        worker.stop()
    everything = run_cli("logs", runs[0], "-o", "json", env=env)
    assert everything.returncode == 0, everything.stderr
    expected = [line["id"] for line in map(json.loads, everything.stdout.splitlines())
                if re.search(r"\bline\b", line["template"] or "", re.I)]
    assert len(expected) == 2 * 6000 + 2  # "line {k} of task {i}", and "partial line joined" of each task

    found = run_cli("logs", runs[0], "--search", "line", "-o", "json", env=env)
    assert found.returncode == 0, found.stderr
    assert [json.loads(line)["id"] for line in found.stdout.splitlines()] == expected
    # Two words: both required, in the template or the values (here `i`, the task's number).
    both = run_cli("logs", runs[0], "--search", "line 1", "--level", "debug", "-o", "json", env=env)
    assert both.returncode == 0, both.stderr
    messages = [json.loads(line)["message"] for line in both.stdout.splitlines()]
    assert len(messages) == 6000 + 1  # task 1's lines, and the line whose k is 1 in task 0
    assert all(m.endswith("of task 1") or m == "line 1 of task 0" for m in messages)
