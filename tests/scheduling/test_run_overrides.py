"""Per-run overrides: `with_*` copies of a workflow run at top level (`.run()`,
`Client.submit_target`), `Client.submit(..., options=...)` and `coflux submit --requires k:v
--no-requires --memo/--no-memo --delay S --retries N` apply to the run's root step as a call-site
override applies to a child step (the caller's options win over the decorator's); `requires` and
`memo` are the run's too. They are recorded on the run and its root step and shown by `runs
inspect`. Bad input is refused with one line (exit 2) or a 4xx, and records nothing.

Two workers host schedapps.routing: the suite's main worker (no tags) and one started here with
`--provides gpu:A100 --accepts gpu` (it takes only work that requires gpu)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from .sched_helpers import steps_of

MODULE = "schedapps.routing"


@pytest.fixture(scope="module")
def gpu(sched) -> Iterator[dict]:
    worker = sched.start_worker("gpu-runs", [MODULE], extra=["--provides", "gpu:A100", "--accepts", "gpu"])
    try:
        session = worker.wait_registered()
        yield {"worker": worker, "name": session["name"], "pid": worker.pid}
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def main_name(sched) -> str:
    return sched.worker.wait_registered()["name"]


def routing():
    from schedapps import routing

    return routing


def root(run: dict) -> dict:
    """The run's root step (step 1, the workflow)."""
    return run["steps"][0]


def ran_on(sched, run_id: str) -> str:
    """The name of the worker recorded on the root step's last attempt."""
    return root(sched.inspect(run_id))["executions"][-1]["worker"]


def run_count(sched, workflow: str) -> int:
    return len(sched.client().runs(f"{MODULE}/{workflow}", limit=1000))


# ------------------------------------------------------------------ Target.with_*(...) at top level


def test_with_requires_run_lands_on_the_tagged_worker(sched, gpu, main_name):
    here = routing().here
    for _ in range(3):
        run = sched.client().submit_target(here.with_requires({"gpu": "A100"}))
        assert run.result(timeout=30) == gpu["pid"]
        assert ran_on(sched, run.id) == gpu["name"]
        snapshot = sched.inspect(run.id)
        assert snapshot["requires"] == {"gpu": ["A100"]}
        assert root(snapshot)["options"]["requires"] == {"gpu": ["A100"]}
    plain = sched.client().submit_target(here)  # the target itself is unchanged
    assert plain.result(timeout=30) == sched.worker.pid and ran_on(sched, plain.id) == main_name


def test_with_requires_none_clears_the_decorators(sched, gpu, main_name):
    on_gpu = routing().here_on_gpu
    assert sched.client().submit_target(on_gpu).result(timeout=30) == gpu["pid"]
    run = sched.client().submit_target(on_gpu.with_requires(None))
    assert run.result(timeout=30) == sched.worker.pid and ran_on(sched, run.id) == main_name
    snapshot = sched.inspect(run.id)
    assert snapshot["requires"] is None and "requires" not in root(snapshot)["options"]


def test_run_of_a_with_copy_goes_through_the_default_client(sched, gpu, monkeypatch):
    """`flow.with_requires(...).run()` from a script: the default client sends the override."""
    from coflux import session

    monkeypatch.setenv("COFLUX_SERVER", sched.server.url)
    monkeypatch.setenv("COFLUX_TOKEN", sched.server.token or "")
    monkeypatch.setattr(session, "_default", None)
    try:
        run = routing().here.with_requires({"gpu": "A100"}).run()
        assert run.result(timeout=30) == gpu["pid"] and ran_on(sched, run.id) == gpu["name"]
    finally:
        if session._default is not None:
            session._default.close()


def test_with_memo_delay_and_retries_at_top_level(sched, tmp_path):
    r = routing()
    memo = sched.client().submit_target(r.twice.with_memo(True))
    assert memo.result(timeout=30) is True and sched.inspect(memo.id)["memo"] is True
    assert sched.client().submit_target(r.twice).result(timeout=30) is False
    unmemo = sched.client().submit_target(r.twice_memo.with_memo(False))
    assert unmemo.result(timeout=30) is False and sched.inspect(unmemo.id)["memo"] is False

    delayed = sched.client().submit_target(r.here.with_delay(0.6))
    assert delayed.result(timeout=30) == sched.worker.pid
    (execution,) = root(sched.inspect(delayed.id))["executions"]
    assert abs(execution["execute_after"] - execution["created_at"] - 0.6) < 0.01
    assert execution["assigned_at"] >= execution["execute_after"]

    log = tmp_path / "flaky"
    retried = sched.client().submit_target(r.flaky_root.with_retries(1), str(log))
    assert retried.result(timeout=30) == 2
    step = root(sched.inspect(retried.id))
    assert [e["result"]["kind"] for e in step["executions"]] == ["error", "value"]
    assert step["options"]["retries"]["limit"] == 1


# ------------------------------------------------------------------ Client.submit(..., options=...)


def test_client_submit_with_options(sched, gpu, main_name, tmp_path):
    client = sched.client()
    run = client.submit(MODULE, "here", options={"requires": {"gpu": "A100"}})
    assert run.result(timeout=30) == gpu["pid"] and ran_on(sched, run.id) == gpu["name"]
    assert sched.inspect(run.id)["requires"] == {"gpu": ["A100"]}
    cleared = client.submit(MODULE, "here_on_gpu", options={"requires": None})
    assert cleared.result(timeout=30) == sched.worker.pid and ran_on(sched, cleared.id) == main_name
    memo = client.submit(MODULE, "twice", options={"memo": True})
    assert memo.result(timeout=30) is True
    retried = client.submit(MODULE, "flaky_root", str(tmp_path / "flaky"), options={"retries": 1, "delay": 0.2})
    assert retried.result(timeout=30) == 2
    first = root(sched.inspect(retried.id))["executions"][0]
    assert abs(first["execute_after"] - first["created_at"] - 0.2) < 0.01


@pytest.mark.parametrize(("options", "error", "message"), [
    ({"requires": ["gpu"]}, TypeError, "requires must be a dict"),
    ({"retries": -1}, ValueError, "retries must not be negative"),
    ({"delay": "soon"}, TypeError, "delay must be a number of seconds"),
    ({"memo": ["x"]}, TypeError, "memo on a workflow must be a bool"),
    ({"gpu": "A100"}, TypeError, "unknown option 'gpu'"),
])
def test_client_submit_refuses_bad_options(sched, options, error, message):
    before = run_count(sched, "here")
    with pytest.raises(error, match=message):
        sched.client().submit(MODULE, "here", options=options)
    assert run_count(sched, "here") == before


# ------------------------------------------------------------------ coflux submit flags


def cli_json(sched, *args: str) -> dict:
    result = sched.cli(*args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_cli_requires_lands_on_the_tagged_worker(sched, gpu):
    result = sched.cli("submit", "--requires", "gpu:A100", f"{MODULE}/here")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == gpu["pid"]
    run_id = sched.client().runs(f"{MODULE}/here", limit=1)[0]["id"]
    run = cli_json(sched, "runs", "inspect", run_id, "-o", "json")
    assert run["requires"] == {"gpu": ["A100"]} and ran_on(sched, run_id) == gpu["name"]
    text = sched.cli("runs", "inspect", run_id)
    assert text.returncode == 0, text.stderr
    assert "requires gpu:A100" in text.stdout.splitlines()[0]
    assert any(line.strip().startswith("options") and "requires gpu:A100" in line
               for line in text.stdout.splitlines())


def test_cli_requires_repeated_and_any_value(sched, gpu):
    run_id = sched.cli("submit", "--no-wait", "--requires", "gpu:H100", "--requires", "gpu:A100",
                       f"{MODULE}/here").stdout.strip()
    assert sched.client().run(run_id).result(timeout=30) == gpu["pid"]
    assert sched.inspect(run_id)["requires"] == {"gpu": ["H100", "A100"]}
    run_id = sched.cli("submit", "--no-wait", "--requires", "gpu", f"{MODULE}/here").stdout.strip()
    assert sched.client().run(run_id).result(timeout=30) == gpu["pid"]
    assert sched.inspect(run_id)["requires"] == {"gpu": ["true"]}


def test_cli_no_requires(sched, gpu, main_name):
    result = sched.cli("submit", "--no-requires", f"{MODULE}/here_on_gpu")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == sched.worker.pid
    run_id = sched.client().runs(f"{MODULE}/here_on_gpu", limit=1)[0]["id"]
    assert ran_on(sched, run_id) == main_name and sched.inspect(run_id)["requires"] is None


def test_cli_memo_and_no_memo(sched):
    assert json.loads(sched.cli("submit", f"{MODULE}/twice").stdout) is False
    result = sched.cli("submit", "--memo", f"{MODULE}/twice")
    assert result.returncode == 0 and json.loads(result.stdout) is True, result.stderr
    result = sched.cli("submit", "--no-memo", f"{MODULE}/twice_memo")
    assert result.returncode == 0 and json.loads(result.stdout) is False, result.stderr
    run_id = sched.client().runs(f"{MODULE}/twice_memo", limit=1)[0]["id"]
    run = sched.inspect(run_id)
    assert run["memo"] is False and len(steps_of(run, "where")) == 2
    assert "    options: memo off" in sched.cli("runs", "inspect", run_id).stdout.splitlines()


def test_cli_delay(sched):
    run_id = sched.cli("submit", "--no-wait", "--delay", "0.6", f"{MODULE}/here").stdout.strip()
    assert sched.client().run(run_id).result(timeout=30) == sched.worker.pid
    (execution,) = root(sched.inspect(run_id))["executions"]
    assert abs(execution["execute_after"] - execution["created_at"] - 0.6) < 0.01
    assert execution["assigned_at"] >= execution["execute_after"]
    assert "delay 0.6 s" in sched.cli("runs", "inspect", run_id).stdout


def test_cli_retries(sched, tmp_path):
    log = str(tmp_path / "flaky")
    result = sched.cli("submit", "--retries", "2", f"{MODULE}/flaky_root", json.dumps(log))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == 2
    run_id = sched.client().runs(f"{MODULE}/flaky_root", limit=1)[0]["id"]
    step = root(sched.inspect(run_id))
    assert [e["result"]["kind"] for e in step["executions"]] == ["error", "value"]
    assert step["options"]["retries"] == {"limit": 2, "backoff": [0, 0]}
    # Without the flag the decorator's (no retries) applies: the first failure is final.
    result = sched.cli("submit", f"{MODULE}/flaky_root", json.dumps(str(tmp_path / "other")))
    assert result.returncode == 1 and "first attempt fails" in result.stderr


@pytest.mark.parametrize(("flags", "message"), [
    (["--requires", ":A100"], "--requires ':A100': expected KEY:VALUE"),
    (["--requires", "gpu="], "--requires 'gpu=': expected KEY:VALUE"),
    (["--requires", "gpu=A100"], "--requires 'gpu=A100': expected KEY:VALUE"),
    (["--requires", "gpu:"], "--requires 'gpu:': expected KEY:VALUE"),
    (["--requires", "gpu:A100", "--no-requires"], "--requires and --no-requires"),
    (["--delay", "-1"], "--delay"),
    (["--delay", "nan"], "--delay"),
    (["--retries", "two"], "--retries"),
    (["--retries", "-1"], "--retries"),
    (["--workspace", "nowhere"], "no workspace named 'nowhere'"),
])
def test_cli_bad_input_is_one_line_and_records_nothing(sched, flags, message):
    before = run_count(sched, "here")
    result = sched.cli("submit", *flags, f"{MODULE}/here")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert run_count(sched, "here") == before


# ------------------------------------------------------------------ HTTP


def post_runs(sched, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(sched.server.url + "api/runs", data=json.dumps(body).encode(), method="POST")
    request.add_header("Authorization", f"token {sched.server.token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_http_submit_with_options(sched, gpu):
    status, reply = post_runs(sched, {"module": MODULE, "target": "here",
                                      "options": {"requires": {"gpu": ["A100"]}}})
    assert status == 201, reply
    assert sched.client().run(reply["run"]).result(timeout=30) == gpu["pid"]


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"options": {"requires": {"gpu": 3}}}, 400, "options.requires"),
    ({"options": {"requires": "gpu"}}, 400, "options.requires"),
    ({"options": {"requires": {"": ["A100"]}}}, 400, "options.requires"),
    ({"options": {"memo": "yes"}}, 400, "options.memo"),
    ({"options": {"delay": -1}}, 400, "options.delay"),
    ({"options": {"retries": {"limit": -1}}}, 400, "options.retries.limit"),
    ({"workspace": "nowhere"}, 404, "no workspace named 'nowhere'"),
])
def test_http_bad_options_are_refused_and_record_nothing(sched, body, status, message):
    before = run_count(sched, "here")
    code, reply = post_runs(sched, {"module": MODULE, "target": "here", **body})
    assert code == status and message in json.dumps(reply), reply
    assert run_count(sched, "here") == before


def test_worker_tags_use_the_same_parser(sched):
    """`coflux worker --provides` is parsed as `--requires` is: a wrong spelling stops it at once."""
    result = sched.cli("worker", "--provides", "gpu=A100", MODULE, timeout=30)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.strip() == "coflux: --provides 'gpu=A100': expected KEY:VALUE (or KEY for any value), " \
                                    "e.g. gpu:A100"
