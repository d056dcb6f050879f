"""Typed arguments from a notebook: a cell-defined workflow's hints become its parameters' JSON
Schemas, so `flow.run(bad)` at top level is refused by the server (naming the parameter) before a
run exists, and a pydantic model argument arrives as the model."""

from __future__ import annotations

import json

from jx_helpers import start_kernel

CELLS = """
%load_ext coflux
import json
import pydantic
import coflux as cf
from coflux.errors import RemoteError

class Box(pydantic.BaseModel):
    size: int
    label: str = "box"

@cf.workflow()
def mean(values: list[float], box: Box | None = None) -> dict:
    return {"mean": sum(values) / len(values), "box": type(box).__name__, "size": box.size if box else None}
"""


async def test_a_bad_argument_from_a_cell_is_refused_naming_it(coflux_ext, jp_serverapp):
    _, k = await start_kernel(jp_serverapp)
    await k.ok(CELLS)
    out = await k.ok("""
try:
    mean.run([0.1, "x"])
    print(json.dumps({"refused": None}))
except RemoteError as exc:
    print(json.dumps({"refused": str(exc)}))
""")
    refused = json.loads(out["stdout"].strip().splitlines()[-1])["refused"]
    assert refused.endswith("mean(): argument 'values[1]': 'x' is not of type 'number' (expected list[float])"), refused
    out = await k.ok("""
print(json.dumps(mean.run([1, 2], Box(size=3)).result(timeout=60)))
""", timeout=90)
    assert json.loads(out["stdout"].strip().splitlines()[-1]) == {"mean": 1.5, "box": "Box", "size": 3}
    out = await k.ok("""
try:
    mean.run([1.0], {"size": "big"})
except RemoteError as exc:
    print(json.dumps({"refused": str(exc)}))
""")
    refused = json.loads(out["stdout"].strip().splitlines()[-1])["refused"]
    assert refused.endswith("argument 'box.size': 'big' is not of type 'integer' (expected Box | None)"), refused
