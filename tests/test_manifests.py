"""`coflux manifests inspect|archive` and `coflux worker PACKAGE` through a real server, workers
and the CLI: a package is hosted whole (its modules at any depth), the default concurrency is
Coflux's (CPU count + 4), inspect says which worker hosts each module and whether any does, and
an archived module leaves the lists until a worker registers it again."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Server, Worker, run_cli, wait_until


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("manifests") / "data").start()
    yield srv
    srv.stop()


def cli(server: Server, *args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, env=server.env(), timeout=60)


def modules(server: Server) -> dict[str, dict]:
    done = cli(server, "manifests", "inspect", "-o", "json")
    assert done.returncode == 0, done.stderr
    return {m["module"]: m for m in json.loads(done.stdout)["modules"]}


def test_a_package_is_hosted_whole_and_inspect_says_by_whom(server: Server, tmp_path: Path) -> None:
    package = Worker(server, ["opspkg"], concurrency=None, log=tmp_path / "pkg.log").start()
    other = Worker(server, ["myapp.workflows"], concurrency=1, log=tmp_path / "myapp.log").start()
    try:
        session = package.wait_registered()
        other.wait_registered()
        assert session["concurrency"] == (os.cpu_count() or 1) + 4  # Coflux's default
        assert {"opspkg.alpha/twice", "opspkg.sub.beta/double", "opspkg.sub.beta/quadruple"} <= set(session["targets"])
        assert "coflux worker: opspkg, opspkg.alpha, opspkg.sub, opspkg.sub.beta ->" in package.output()
        done = cli(server, "submit", "opspkg.sub.beta/quadruple", "3")
        assert done.returncode == 0 and done.stdout.strip() == "12", done.stderr

        found = modules(server)
        assert found["opspkg.alpha"]["hosts"] == [session["name"]] and found["opspkg.alpha"]["hosted"]
        assert [w["name"] for w in found["opspkg.sub.beta"]["workflows"]] == ["quadruple"]  # tasks are not manifests
        text = cli(server, "manifests", "inspect").stdout
        assert f"opspkg.alpha  (hosted by {session['name']})\n  twice\n" in text
        other.stop()
        wait_until(lambda: not modules(server)["myapp.workflows"]["hosted"], 30, message="myapp to lose its worker")
        text = cli(server, "manifests", "inspect").stdout
        assert "myapp.workflows  (no connected worker hosts it)" in text and "  roll_die  (not hosted)" in text
    finally:
        package.stop()
        other.stop()


def test_an_archived_module_leaves_the_lists_until_registered_again(server: Server, tmp_path: Path) -> None:
    worker = Worker(server, ["opspkg"], concurrency=1, log=tmp_path / "pkg.log").start()
    try:
        worker.wait_registered()
        archived = cli(server, "manifests", "archive", "opspkg.sub.beta")
        assert archived.returncode == 0, archived.stderr
        assert archived.stdout.startswith("archived opspkg.sub.beta in workspace default (1 workflow(s))")
        assert "opspkg.sub.beta" not in modules(server)
        listed = [f"{w['module']}/{w['name']}" for w in server.get("api/workflows")["workflows"]]
        assert "opspkg.sub.beta/quadruple" not in listed and "opspkg.alpha/twice" in listed
        refused = cli(server, "submit", "--no-wait", "opspkg.sub.beta/quadruple", "1")
        assert refused.returncode == 2 and "unknown workflow opspkg.sub.beta/quadruple" in refused.stderr
        # bad input: one line, exit 2
        for args, message in [(("archive", "opspkg.sub.beta"), "no module 'opspkg.sub.beta' is registered in "
                                                               "workspace 'default'"),
                              (("archive", "nope", "--workspace", "nowhere"), "no workspace named 'nowhere'")]:
            done = cli(server, "manifests", *args)
            assert done.returncode == 2 and done.stderr == f"coflux: {message}\n", done.stderr
    finally:
        worker.stop()
    again = Worker(server, ["opspkg"], concurrency=1, log=tmp_path / "again.log").start()
    try:
        again.wait_registered()
        assert [w["name"] for w in modules(server)["opspkg.sub.beta"]["workflows"]] == ["quadruple"]
    finally:
        again.stop()
