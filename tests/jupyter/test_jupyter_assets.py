"""Assets and large values in a kernel attached to the coflux server inside Jupyter: paths
resolve against the kernel's working directory, blobs go through the extension's routes
(`{base_url}coflux/api/blobs/<key>`, the kernel's internal token)."""

from __future__ import annotations

import json

from jx_helpers import start_kernel

CELL = """
import json, os, pathlib, tempfile
import coflux as cf

home = tempfile.mkdtemp(prefix="kernel-cwd-")
os.chdir(home)
pathlib.Path("data.txt").write_text("from the kernel")
pathlib.Path("out").mkdir()
pathlib.Path("out/r.json").write_text("{}")

@cf.task()
def snapshot():
    return cf.asset(match="*.txt", name="kernel files")

@cf.task()
def use(asset):
    return {"read": asset["data.txt"].read().decode(), "cwd": os.getcwd(),
            "restored": str(asset.restore(at="restored")["data.txt"])}

@cf.task()
def outside():
    try:
        cf.asset("../" + os.path.basename(home) + "-nope")
    except ValueError as exc:
        return str(exc)

@cf.task()
def big(n):
    return b"k" * n

@cf.task()
def size(value):
    return len(value)

@cf.workflow()
def flow():
    return {"use": use(snapshot()), "outside": outside(), "big": size(big(3 * 1024 * 1024))}
"""


async def test_assets_and_blobs_in_a_kernel(coflux_ext, jp_serverapp):
    _, k = await start_kernel(jp_serverapp)
    await k.ok("%load_ext coflux")
    await k.ok(CELL)
    out = await k.ok("run = flow.run()\nresult = run.result(timeout=60)\n"
                     "assets = run.assets()\n"
                     "print(json.dumps({'result': result, 'home': home, 'assets': [a.name for a in assets],"
                     " 'paths': [e.path for e in assets[0].entries]}))", timeout=120)
    report = json.loads(out["stdout"].strip().splitlines()[-1])
    result = report["result"]
    assert result["use"]["read"] == "from the kernel"
    assert result["use"]["cwd"] == report["home"]  # the kernel's working directory, shared
    assert result["use"]["restored"] == report["home"] + "/restored/data.txt"
    assert "outside" in result["outside"]
    assert result["big"] == 3 * 1024 * 1024  # a blob through Jupyter's routes
    assert report["assets"] == ["kernel files"] and report["paths"] == ["data.txt"]
