"""The kubernetes launcher without a cluster (none can run on these machines; the README says
it has not been run against a live one): the Job it builds for a launch, made of the official
client's typed models from the pool's fields; an API server's refusal (a real HTTP server that
answers as Kubernetes does) surfaced as the launch's error and the waiting run's reason; and
the pool's `token` stored encrypted and never shown back."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from harness import Server, wait_until
from test_pools import cli_in, launches, submit

from coflux_server.pools.launchers.base import LaunchError, LaunchSpec
from coflux_server.pools.launchers.kubernetes import KubernetesLauncher, build_job

pytest.importorskip("kubernetes")
TOKEN = "k8s-secret-token-5d1e"


def spec(**config) -> LaunchSpec:
    return LaunchSpec(launch_id="LAbc123", pool="gpu", workspace="prod", config={"image": "org/app:1", **config},
                      modules=["app.flows"], provides={"gpu": ["A100"]}, accepts={}, server_url="http://coflux:7777/",
                      token="launch-credential", log_dir="/tmp")


def test_the_job_is_built_from_the_pools_fields_with_the_clients_models() -> None:
    from kubernetes import client as k8s

    job = build_job(spec(namespace="workers", serviceAccount="runner", activeDeadlineSeconds=3600,
                         nodeSelector={"pool": "gpu"}, env={"MODE": "fast"},
                         tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                         resources={"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "2"}}))
    assert isinstance(job, k8s.V1Job)
    assert job.metadata.name == "coflux-labc123" and job.spec.backoff_limit == 0
    assert job.spec.active_deadline_seconds == 3600
    pod = job.spec.template.spec
    assert pod.restart_policy == "Never" and pod.service_account_name == "runner"
    assert pod.node_selector == {"pool": "gpu"}
    assert isinstance(pod.tolerations[0], k8s.V1Toleration) and pod.tolerations[0].key == "gpu"
    [container] = pod.containers
    assert container.image == "org/app:1"
    assert container.command[:4] == ["python", "-m", "coflux", "worker"]
    assert container.command[-1] == "app.flows" and "gpu:A100" in container.command
    env = {e.name: e.value for e in container.env}
    assert env["COFLUX_TOKEN"] == "launch-credential" and env["MODE"] == "fast" and env["COFLUX_LAUNCH"] == "LAbc123"
    assert container.resources.limits == {"nvidia.com/gpu": "1"}
    # What would be sent to the API server: the client's own serialisation of the models.
    sent = k8s.ApiClient().sanitize_for_serialization(job)
    assert sent["spec"]["template"]["spec"]["containers"][0]["image"] == "org/app:1"


class _Refusing(BaseHTTPRequestHandler):
    """An API server that refuses to create Jobs, as Kubernetes answers (a Status object)."""

    def do_POST(self) -> None:
        # Recorded before answering: the client may check `seen` as soon as it has the answer.
        self.server.seen.append(self.headers.get("Authorization"))  # type: ignore[attr-defined]
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden",
                           "message": 'jobs.batch is forbidden: User "coflux" cannot create resource "jobs"',
                           "code": 403}).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def api_server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    httpd.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()


def test_an_api_refusal_is_the_launch_error(api_server: ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{api_server.server_address[1]}"
    with pytest.raises(LaunchError, match='kubernetes: 403 Forbidden: jobs.batch is forbidden: User "coflux"'):
        KubernetesLauncher().start(spec(apiServer=url, token=TOKEN))
    assert api_server.seen == [f"Bearer {TOKEN}"]  # type: ignore[attr-defined]


def test_a_kubernetes_pool_keeps_its_token_encrypted_and_shows_the_failure(
        tmp_path: Path, api_server: ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{api_server.server_address[1]}"
    server = Server(tmp_path / "data", extra=["--launcher", "kubernetes"]).start()
    try:
        cli = cli_in(server, "default")
        created = cli("pools", "create", "cluster", "--type", "kubernetes", "--set", "image=org/app:1",
                      "--set", f"apiServer={url}", "--set", f"token={TOKEN}", "--modules", "poolapp.flows")
        assert created.returncode == 0, created.stderr
        shown = cli("pools", "get", "cluster").stdout
        assert "token = (set)" in shown and TOKEN not in shown
        exported = cli("pools", "export").stdout
        assert TOKEN not in exported and "token" not in exported
        stored = sqlite3.connect(tmp_path / "data" / "coflux.db").execute("SELECT config FROM pools").fetchone()[0]
        assert TOKEN not in stored and '"token": "enc:' in stored
        run_id = submit(cli, "poolapp.flows/hello", '"x"')
        wait_until(lambda: [lc for lc in launches(server, "default", "cluster") if lc["state"] == "failed"],
                   30, 0.2, "the refused launch")
        reason = cli("runs", "inspect", "--no-wait", run_id).stdout
        assert "pool cluster: launch failed: kubernetes: 403 Forbidden: jobs.batch is forbidden" in reason, reason
        assert api_server.seen[0] == f"Bearer {TOKEN}"  # type: ignore[attr-defined]  # decrypted to launch
        cli("pools", "disable", "cluster")
    finally:
        server.stop()
