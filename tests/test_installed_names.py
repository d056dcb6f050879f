"""coflux installs its server and its Jupyter extension as `coflux_server` and `coflux_jupyter`
(the repository's folders server/ and jupyter_ext/, renamed by the wheel: pyproject.toml; an
editable install maps them with hatch_build.py), so a user's `server.py` or `jupyter_ext.py`
beside their workflows neither shadows ours nor is shadowed by it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from harness import REPO_DIR, Server, Worker, base_env

USER_MODULES = {
    "server.py": 'WHO = "the user\'s server.py"\n',  # a module, not a package: `server.app` is no module of it
    "jupyter_ext.py": 'WHO = "the user\'s jupyter_ext.py"\n',
    "userflows.py": textwrap.dedent("""
        import jupyter_ext
        import server

        import coflux as cf


        @cf.workflow()
        def whose() -> list:
            return [server.WHO, jupyter_ext.WHO]
    """),
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's folder: their workflows beside their own `server.py` and `jupyter_ext.py`."""
    folder = tmp_path / "project"
    folder.mkdir()
    for name, text in USER_MODULES.items():
        (folder / name).write_text(text)
    return folder


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=base_env(), capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_server_and_worker_started_beside_a_users_server_py(project: Path, tmp_path: Path) -> None:
    helped = subprocess.run([sys.executable, "-m", "coflux", "server", "--help"], cwd=project, env=base_env(),
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert helped.returncode == 0, helped.stderr
    assert "--data-dir" in helped.stdout
    # Started from that folder (first on sys.path), `coflux server` runs ours: the user's
    # server.py is no package, so importing `server.app` from it would fail.
    server = Server(tmp_path / "data", cwd=project).start()
    worker = Worker(server, ["userflows"], log=tmp_path / "worker.log", cwd=project).start()
    try:
        worker.wait_registered()
        from coflux.client import Client

        with Client(server.url, server.token) as client:
            # Inside the worker's executions, `server` and `jupyter_ext` are the user's modules.
            assert client.submit("userflows", "whose").result(timeout=60) == [
                "the user's server.py", "the user's jupyter_ext.py"]
    finally:
        worker.stop()
        server.stop()


def test_both_in_one_process(project: Path) -> None:
    """One interpreter holds the user's modules and ours, each under its own name."""
    result = _python(textwrap.dedent("""
        import os
        import jupyter_ext, server
        import coflux_jupyter, coflux_server.app, coflux_server.routes
        print(server.WHO)
        print(jupyter_ext.WHO)
        here = os.getcwd()
        print(os.path.dirname(server.__file__) == here, os.path.dirname(coflux_server.app.__file__) != here)
        print(coflux_jupyter._jupyter_server_extension_points()[0]["module"])
        print(coflux_jupyter.CofluxExtension.name)
    """), project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["the user's server.py", "the user's jupyter_ext.py", "True True",
                                          "coflux_jupyter", "coflux_jupyter"]


def test_jupyter_loads_our_extension_beside_a_users_jupyter_ext_py(project: Path) -> None:
    jupyter = Path(sys.executable).with_name("jupyter")
    result = subprocess.run([str(jupyter), "server", "extension", "list"], cwd=project, env=base_env(),
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    out = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)  # without its colours
    assert result.returncode == 0, out
    assert re.search(r"coflux_jupyter\s+enabled", out) and re.search(r"coflux_jupyter\s+OK", out), out
    assert "jupyter_ext" not in out, out


def test_the_wheel_installs_only_coflux_names(tmp_path: Path) -> None:
    """The built wheel's top level: coflux, coflux_server, coflux_jupyter (and its metadata), with
    the Jupyter config enabling `coflux_jupyter`; no `server`, no `jupyter_ext`."""
    env = {**os.environ, "SKIP_JUPYTER_BUILDER": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}  # no npm build
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO_DIR), "--no-deps", "-q",
                            "-w", str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("coflux-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.startswith("coflux-")} == {"coflux", "coflux_server", "coflux_jupyter"}
    assert "coflux_server/app.py" in names and "coflux_server/store/queries.py" in names
    assert "coflux_jupyter/extension.py" in names
    assert not any(name.startswith("coflux_jupyter/frontend/") for name in names)
    (config,) = [n for n in names if "/etc/jupyter/jupyter_server_config.d/" in n]
    assert config.endswith("/coflux_jupyter.json")
    assert '"coflux_jupyter": true' in zipfile.ZipFile(wheel).read(config).decode()
