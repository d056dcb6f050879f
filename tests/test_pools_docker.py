"""The docker launcher against a real Docker Engine (Debian's `docker.io`; .ci/run starts a
private `dockerd` and sets COFLUX_TEST_DOCKER_HOST). No image registry is reachable, so the
image is made here: `docker import` of a root with empty mount points, run with the host's
Python, the project and its virtualenv bind-mounted read-only (the pool's `volumes`) and host
networking (`network`), so the worker in the container reaches the server on 127.0.0.1.
Skipped, saying why, when no Docker Engine answers."""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import time
from collections.abc import Iterator

import pytest
from harness import APPS_DIR, REPO_DIR, Server, wait_until
from test_pools import cli_in, launches, result_of, submit

pytestmark = pytest.mark.timeout(240)
IMAGE = "coflux-pools-test:latest"


def _docker_host() -> str | None:
    return os.environ.get("COFLUX_TEST_DOCKER_HOST") or os.environ.get("DOCKER_HOST") or (
        "unix:///var/run/docker.sock" if os.path.exists("/var/run/docker.sock") else None)


@pytest.fixture(scope="module")
def docker_client() -> Iterator[object]:
    docker = pytest.importorskip("docker")
    host = _docker_host()
    if host is None:
        pytest.skip("no Docker Engine: set COFLUX_TEST_DOCKER_HOST (.ci/run starts dockerd as root)")
    try:
        client = docker.DockerClient(base_url=host)
        client.ping()
    except Exception as exc:
        pytest.skip(f"no Docker Engine answers at {host}: {exc}")
    _build_image(client)
    yield client
    client.close()


def _build_image(client: object) -> None:
    """An image of empty mount points (everything else comes from the host, read-only)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in ("tmp", "usr", "lib", "lib64", "bin", "etc", "root", "work", "proc", "dev", "sys", "opt"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
    client.api.import_image_from_data(buffer.getvalue(), repository=IMAGE.split(":")[0], tag="latest")


def _volumes() -> dict:
    paths = {"/usr", "/lib", "/lib64", "/bin", "/etc", sys.base_prefix, str(REPO_DIR)}
    return {p: {"bind": p, "mode": "ro"} for p in sorted(paths) if os.path.exists(p)}


@pytest.fixture(scope="module")
def docker_server(tmp_path_factory: pytest.TempPathFactory, docker_client: object) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("docker") / "data", extra=["--launcher", "docker"]).start()
    yield server
    server.stop()
    for container in docker_client.containers.list(all=True, filters={"label": "coflux.launch"}):  # type: ignore[attr-defined]
        container.remove(force=True)  # what the stopped server launched (it would re-attach to it)


def _pool_flags(image: str = IMAGE) -> list[str]:
    return ["--set", f"image={image}", "--set", f"dockerHost={_docker_host()}", "--set", "network=host",
            "--set", f"volumes={json.dumps(_volumes())}", "--set", f"python={sys.executable}",
            "--set", f"workdir={APPS_DIR}", "--set", f"env.PYTHONPATH={APPS_DIR}", "--set", "idleTimeout=2",
            "--modules", "poolapp.flows"]


def test_a_workflow_runs_in_a_launched_container_which_is_removed_when_its_worker_exits(
        docker_server: Server, docker_client: object) -> None:
    cli = cli_in(docker_server, "containers")
    result = cli("pools", "create", "boxes", "--type", "docker", *_pool_flags())
    assert result.returncode == 0, result.stderr
    value = result_of(cli, submit(cli, "poolapp.flows/hello", '"box"'))
    [launch] = launches(docker_server, "containers", "boxes")
    assert value == f"hello box from {launch['id']}"
    container_name = f"coflux-{launch['id'].lower()}"
    # Idle for 2 s: it drains, exits, its log tail is kept and the container is removed.
    ended = wait_until(lambda: [lc for lc in launches(docker_server, "containers", "boxes")
                                if lc["state"] == "exited"], 60, 0.3, "the container's worker to exit")
    assert ended[0]["exit_code"] == 0 and "coflux worker: stopped" in ended[0]["log_tail"]
    time.sleep(0.5)
    names = [c.name for c in docker_client.containers.list(all=True)]  # type: ignore[attr-defined]
    assert container_name not in names


def test_a_missing_image_is_a_failed_launch_in_the_runs_reason(docker_server: Server) -> None:
    cli = cli_in(docker_server, "missing")
    create_result = cli("pools", "create", "ghost", "--type", "docker", *_pool_flags("coflux-no-such-image:1"))
    assert create_result.returncode == 0, create_result.stderr
    run_id = submit(cli, "poolapp.flows/hello", '"x"')
    wait_until(lambda: [lc for lc in launches(docker_server, "missing", "ghost") if lc["state"] == "failed"],
               60, 0.3, "the failed launch")
    shown = cli("runs", "inspect", "--no-wait", run_id)
    assert "pool ghost: launch failed: image not found: coflux-no-such-image:1" in shown.stdout, shown.stdout
    cli("pools", "disable", "ghost")


