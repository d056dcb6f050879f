"""People in the loop (issue 19): prompts raised by running code (`cf.Prompt`), answered through
the CLI and the HTTP routes a browser uses, with a real server, worker and SQLite database."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import APPS_DIR, Server, Worker, run_cli, wait_until

WORKSPACE = "inputs"


@pytest.fixture(scope="module")
def prompt_worker(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    worker = Worker(server, ["promptapp"], concurrency=2, log=tmp_path_factory.mktemp("inputs") / "w.log",
                    extra=["--workspace", WORKSPACE]).start()
    worker.wait_registered()
    yield worker
    worker.stop()


def cli(server: Server, *args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, env=server.env(), timeout=60)


def start(server: Server, workflow: str, *args: object) -> str:
    result = cli(server, "submit", "--no-wait", "--workspace", WORKSPACE, f"promptapp/{workflow}",
                 *[json.dumps(a) for a in args])
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def result(server: Server, run_id: str, timeout: float = 60) -> dict:
    outcome = server.get(f"api/runs/{run_id}/result?timeout={timeout}", timeout=timeout + 10)
    assert outcome["status"] != "pending", outcome
    return outcome


def value(server: Server, run_id: str) -> object:
    outcome = result(server, run_id)
    assert outcome["status"] == "value", outcome
    return outcome["value"]["v"]


def pending_input(server: Server, run_id: str, timeout: float = 60) -> dict:
    def found() -> dict | None:
        inputs = server.get(f"api/inputs?run={run_id}")["inputs"]
        return inputs[0] if inputs else None

    return wait_until(found, timeout, interval=0.05, message=f"a pending input of {run_id}")


def post(server: Server, path: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"token {token or server.token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_coflux_deploy_example_approved_by_the_cli(server: Server, prompt_worker: Worker) -> None:
    run_id = start(server, "deploy", "api")
    asked = pending_input(server, run_id)
    assert asked["title"] == "Deployment" and asked["schema"] is None and asked["state"] == "pending"
    listing = cli(server, "inputs", "list")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[0].split() == ["ID", "Run", "Workspace", "Execution", "Key", "Requires",
                                                       "Created"]
    assert asked["id"] in listing.stdout
    assert asked["id"] in cli(server, "inputs", "list", "--workspace", WORKSPACE).stdout
    assert asked["id"] not in cli(server, "inputs", "list", "--workspace", "default").stdout
    shown = cli(server, "inputs", "inspect", asked["id"])
    assert "Prompt: Approve deployment of api?" in shown.stdout and "Status: pending" in shown.stdout, shown.stdout
    answered = cli(server, "inputs", "respond", asked["id"], "null")
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.strip() == f"Input '{asked['id']}' responded."
    assert result(server, run_id)["status"] == "value"
    # do_deploy ran after the approval, and the answer is recorded with who gave it.
    run = json.loads(cli(server, "runs", "inspect", "--no-wait", run_id, "-o", "json").stdout)
    assert [s["target"] for s in run["steps"]] == ["deploy", "do_deploy"]
    shown = cli(server, "inputs", "inspect", asked["id"])
    assert "Status: responded" in shown.stdout and "by super token" in shown.stdout, shown.stdout
    assert run["inputs"][0]["by"] == "super token" and run["inputs"][0]["state"] == "responded"
    text = cli(server, "runs", "inspect", "--no-wait", run_id).stdout
    assert f"input {asked['id']}  Deployment  from {run_id}:1:1  responded by super token at " in text, text
    # Answering again is refused clearly, and changes nothing.
    again = cli(server, "inputs", "respond", asked["id"], "null")
    assert again.returncode == 2 and f"input {asked['id']} is already responded" in again.stderr, again.stderr
    assert cli(server, "inputs", "list", "--run", run_id).stdout.strip() == "No pending inputs."


def test_a_pydantic_model_answer_is_validated_and_returned_as_the_model(server: Server,
                                                                       prompt_worker: Worker) -> None:
    run_id = start(server, "annotate", "Shipping was slow but the product is great.")
    asked = pending_input(server, run_id)
    assert asked["schema"]["properties"]["confidence"]["maximum"] == 5
    assert asked["placeholders"]["text"]["v"].startswith("Shipping was slow")
    # Invalid answers are refused with the field and the reason; the input stays pending.
    status, body = post(server, f"api/inputs/{asked['id']}/respond",
                        {"value": {"sentiment": "positive", "topic": "product", "confidence": 9}})
    assert status == 400 and "confidence" in body["error"]["message"] and "9" in body["error"]["message"], body
    bad = cli(server, "inputs", "respond", asked["id"], '{"sentiment": "great"}')
    assert bad.returncode == 2 and "sentiment" in bad.stderr, bad.stderr
    assert server.get(f"api/inputs/{asked['id']}")["state"] == "pending"
    status, body = post(server, f"api/inputs/{asked['id']}/respond",
                        {"value": {"sentiment": "positive", "topic": "shipping", "confidence": 4}})
    assert status == 200, body
    assert value(server, run_id) == {"sentiment": "positive", "topic": "shipping", "confidence": 4}


def test_dismiss_raises_input_dismissed_in_the_workflow(server: Server, prompt_worker: Worker) -> None:
    run_id = start(server, "approve_or_not", "db")
    asked = pending_input(server, run_id)
    assert asked["actions"] == ["Ship it", "Stop"] and asked["requires"] == {"role": "release-manager"}
    dismissed = cli(server, "inputs", "dismiss", asked["id"])
    assert dismissed.stdout.strip() == f"Input '{asked['id']}' dismissed.", dismissed.stderr
    assert value(server, run_id) == "dismissed"
    status, body = post(server, f"api/inputs/{asked['id']}/respond", {"value": None})
    assert status == 409 and "already dismissed" in body["error"]["message"], body


def test_select_over_an_input_and_an_execution(server: Server, prompt_worker: Worker) -> None:
    # The input answers first: it wins, and the task is cancelled.
    run_id = start(server, "race", 30.0)
    asked = pending_input(server, run_id)
    assert post(server, f"api/inputs/{asked['id']}/respond", {"value": 7})[0] == 200
    assert value(server, run_id) == {"winner": "input", "value": 7}
    # The task ends first: it wins, and cf.cancel withdraws the input (cancelled, not pending).
    run_id = start(server, "race", 0.2)
    assert value(server, run_id) == {"winner": "task", "input": "cancelled"}
    assert server.get(f"api/inputs?run={run_id}&state=cancelled")["inputs"][0]["state"] == "cancelled"
    assert server.get(f"api/inputs?run={run_id}")["inputs"] == []


def test_a_rerun_step_gets_the_same_input_and_its_answer(server: Server, prompt_worker: Worker) -> None:
    run_id = start(server, "keyed", 1)
    asked = pending_input(server, run_id)
    assert post(server, f"api/inputs/{asked['id']}/respond", {"value": 5})[0] == 200
    first = value(server, run_id)
    assert first == {"input": asked["id"], "value": 5, "n": 1}
    rerun = cli(server, "runs", "rerun", "--workspace", WORKSPACE, f"{run_id}:1")
    assert rerun.returncode == 0, rerun.stderr
    # The re-run asked again (with another placeholder value, same key): same input, same answer,
    # nobody asked twice.
    wait_until(lambda: result(server, run_id)["execution"] != first and
               result(server, run_id)["execution"].endswith(":2"), 60, message="the re-run's result")
    assert value(server, run_id) == first
    assert len(server.get(f"api/inputs?run={run_id}&state=all")["inputs"]) == 1


def test_suspense_frees_the_slot_while_waiting(server: Server, tmp_path: Path) -> None:
    worker = Worker(server, ["promptapp"], concurrency=1, log=tmp_path / "w.log",
                    extra=["--workspace", "inputs-one-slot"]).start()
    try:
        worker.wait_registered()
        run_id = run_cli("submit", "--no-wait", "--workspace", "inputs-one-slot", "promptapp/suspended", '"s"',
                         env=server.env()).stdout.strip()
        asked = pending_input(server, run_id)
        # The only slot is free while the prompt waits: another run goes through.
        quick = run_cli("submit", "--workspace", "inputs-one-slot", "promptapp/quick", env=server.env(), timeout=60)
        assert quick.returncode == 0 and json.loads(quick.stdout) == "quick", quick.stderr
        assert post(server, f"api/inputs/{asked['id']}/respond", {"value": 3})[0] == 200
        assert value(server, run_id) == {"input": asked["id"], "value": 3}
        run = json.loads(cli(server, "runs", "inspect", "--no-wait", run_id, "-o", "json").stdout)
        causes = [e.get("cause") for e in run["steps"][0]["executions"]]
        assert "suspend" in causes, run["steps"][0]["executions"]
    finally:
        worker.stop()


def test_poll_returns_the_default_then_the_answer(server: Server, prompt_worker: Worker) -> None:
    run_id = start(server, "polling")
    asked = pending_input(server, run_id)
    assert post(server, f"api/inputs/{asked['id']}/respond", {"value": 2})[0] == 200
    assert value(server, run_id) == "none yet then 2"


def test_a_prompt_outside_coflux_raises_unless_a_test_answers_it() -> None:
    code = """
import coflux as cf
from coflux import testing
p = cf.Prompt("Approve {x}?")
try:
    p(x=1)
except RuntimeError as e:
    print("raised:", e)
testing.answer(p, None)
print("approved:", p(x=1))
q = cf.Prompt("How many?", model=int)
testing.answer(q, "4")
print("answer:", q.submit().result() + 1)
testing.dismiss(q)
try:
    q()
except cf.InputDismissed:
    print("dismissed")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=APPS_DIR)
    lines = out.stdout.splitlines()
    assert lines[0].startswith("raised: cf.Prompt 'Approve {x}?' can only be asked inside a running"), out
    assert lines[1:] == ["approved: None", "answer: 5", "dismissed"], out


def test_a_server_kill_between_prompt_and_answer_loses_nothing(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", log=tmp_path / "server.log").start()
    worker = Worker(server, ["promptapp"], concurrency=1, log=tmp_path / "w.log").start()
    try:
        worker.wait_registered()
        blocking = run_cli("submit", "--no-wait", "promptapp/annotate", '"fine"', env=server.env()).stdout.strip()
        suspending = run_cli("submit", "--no-wait", "promptapp/suspended", '"k"', env=server.env()).stdout.strip()
        first, second = pending_input(server, blocking), pending_input(server, suspending)
        server.kill()
        server.start()  # the same port and database
        assert server.get(f"api/inputs/{first['id']}")["state"] == "pending"
        worker.wait_registered()
        status, body = post(server, f"api/inputs/{second['id']}/respond", {"value": 11})
        assert status == 200, body
        status, body = post(server, f"api/inputs/{first['id']}/respond",
                            {"value": {"sentiment": "neutral", "topic": "other", "confidence": 1}})
        assert status == 200, body
        assert value(server, suspending) == {"input": second["id"], "value": 11}
        assert value(server, blocking) == {"sentiment": "neutral", "topic": "other", "confidence": 1}
        # Each run asked once: nothing was asked again, nor answered twice.
        for run_id in (blocking, suspending):
            assert len(server.get(f"api/inputs?run={run_id}&state=all")["inputs"]) == 1
    finally:
        worker.stop()
        server.stop()


def test_cancelling_the_run_withdraws_its_prompt(server: Server, prompt_worker: Worker) -> None:
    run_id = start(server, "deploy", "web")
    asked = pending_input(server, run_id)
    cancelled = cli(server, "runs", "cancel", run_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert result(server, run_id)["status"] == "cancelled"
    assert server.get(f"api/inputs/{asked['id']}")["state"] == "cancelled"
    assert server.get(f"api/inputs?run={run_id}")["inputs"] == []


def test_a_worker_restart_while_suspended_loses_nothing(server: Server, tmp_path: Path) -> None:
    worker = Worker(server, ["promptapp"], concurrency=1, log=tmp_path / "w1.log",
                    extra=["--workspace", "inputs-restart"]).start()
    replacement = None
    try:
        worker.wait_registered()
        run_id = run_cli("submit", "--no-wait", "--workspace", "inputs-restart", "promptapp/suspended", '"r"',
                         env=server.env()).stdout.strip()
        asked = pending_input(server, run_id)
        worker.proc.kill()  # type: ignore[union-attr]
        worker.proc.wait(10)  # type: ignore[union-attr]
        replacement = Worker(server, ["promptapp"], concurrency=1, log=tmp_path / "w2.log",
                             extra=["--workspace", "inputs-restart"]).start()
        replacement.wait_registered()
        assert post(server, f"api/inputs/{asked['id']}/respond", {"value": 8})[0] == 200
        assert value(server, run_id) == {"input": asked["id"], "value": 8}
        assert len(server.get(f"api/inputs?run={run_id}&state=all")["inputs"]) == 1
    finally:
        worker.stop()
        if replacement is not None:
            replacement.stop()


def test_an_input_handle_passed_to_another_step(server: Server, prompt_worker: Worker) -> None:
    run_id = start(server, "handed_over")
    asked = pending_input(server, run_id)
    assert post(server, f"api/inputs/{asked['id']}/respond", {"value": 41})[0] == 200
    assert value(server, run_id) == 42


def test_only_tokens_with_the_required_tags_may_answer(server: Server, prompt_worker: Worker) -> None:
    def token(*flags: str) -> str:
        made = cli(server, "tokens", "create", *flags)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    def get(path: str, as_token: str) -> dict:
        return server.get(path, token=as_token)

    manager = token("--name", "release-bot", "--tag", "role:release-manager")
    developer = token("--name", "dev-bot", "--tag", "role:developer")
    untagged = token("--name", "plain-bot")

    run_id = start(server, "approve_or_not", "api")
    asked = pending_input(server, run_id)
    assert asked["requires"] == {"role": "release-manager"}
    for other, name in ((developer, "dev-bot"), (untagged, "plain-bot")):
        assert get(f"api/inputs/{asked['id']}", other)["may_respond"] is False
        assert [i["may_respond"] for i in get(f"api/inputs?run={run_id}", other)["inputs"]] == [False]
        status, body = post(server, f"api/inputs/{asked['id']}/respond", {"value": None}, token=other)
        assert status == 403, body
        assert body["error"]["message"].startswith(f"{name} may not answer {asked['id']}: it requires "), body
        status, body = post(server, f"api/inputs/{asked['id']}/dismiss", {}, token=other)
        assert status == 403, body
    # Refused answers changed nothing: still pending, the run still waiting.
    assert get(f"api/inputs/{asked['id']}", server.token)["state"] == "pending"
    assert server.get(f"api/runs/{run_id}")["status"] == "running"

    assert get(f"api/inputs/{asked['id']}", manager)["may_respond"] is True
    status, body = post(server, f"api/inputs/{asked['id']}/respond", {"value": None}, token=manager)
    assert status == 200, body
    assert value(server, run_id) == "approved"
    answered = get(f"api/inputs/{asked['id']}", server.token)
    assert answered["state"] == "responded" and answered["by"] == "release-bot", answered

    # The super token owns the server: it may answer whatever a prompt requires.
    run_id = start(server, "approve_or_not", "db")
    asked = pending_input(server, run_id)
    assert get(f"api/inputs/{asked['id']}", server.token)["may_respond"] is True
    status, body = post(server, f"api/inputs/{asked['id']}/respond", {"value": None})
    assert status == 200, body
    assert value(server, run_id) == "approved"


def test_a_token_scoped_to_other_workspaces_neither_sees_nor_answers_a_prompt(server: Server,
                                                                             prompt_worker: Worker) -> None:
    made = cli(server, "tokens", "create", "--name", "team-bot", "--workspaces", "team/*",
               "--tag", "role:release-manager")
    assert made.returncode == 0, made.stderr
    scoped = made.stdout.strip()
    run_id = start(server, "approve_or_not", "scoped")
    asked = pending_input(server, run_id)
    assert asked["workspace"] == WORKSPACE
    # The list leaves it out; reading, answering or dismissing it is refused, naming the scope.
    assert [i["id"] for i in server.get("api/inputs?state=all", token=scoped)["inputs"]] == []
    with pytest.raises(urllib.error.HTTPError) as refused:
        server.get(f"api/inputs/{asked['id']}", token=scoped)
    assert refused.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as refused:
        server.get(f"api/inputs?workspace={WORKSPACE}", token=scoped)
    assert refused.value.code == 403
    for action, body in (("respond", {"value": None}), ("dismiss", {})):
        status, reply = post(server, f"api/inputs/{asked['id']}/{action}", body, token=scoped)
        assert status == 403 and "may not use workspace 'inputs'" in reply["error"]["message"], reply
    assert server.get(f"api/inputs/{asked['id']}")["state"] == "pending"
    # Listing by workspace: this one is in its workspace's list and in no other's.
    assert asked["id"] in [i["id"] for i in server.get(f"api/inputs?workspace={WORKSPACE}")["inputs"]]
    assert server.get("api/inputs?workspace=default")["inputs"] == []
    status, reply = post(server, f"api/inputs/{asked['id']}/respond", {"value": None})
    assert status == 200, reply
    assert value(server, run_id) == "approved"
