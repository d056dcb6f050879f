"""Show where a remote failure happened in the traceback the user sees.

An error raised in a task travels as (type, message, frames). When `run.result()` raises it in a
notebook or a script, Python would show only the frames of the caller and of coflux. Here the
remote frames (file, line, function, source) are appended to the exception's traceback as real
frame objects, so Python, IPython and every tool that prints tracebacks show them where they
belong: below the line that waited for the result, ending at the line that raised.

A frame object cannot be built directly, so each one comes from running a tiny code object
compiled under the remote file name, renamed to the remote function. The source line is the
local file's when it exists (the same code checked out here, or a notebook cell of this kernel);
otherwise the line the worker sent is placed in `linecache` under that name.

Layer: a leaf (the standard library only).
"""

from __future__ import annotations

import linecache
import os
import sys
import types
from typing import Any

MAX_FRAMES = 100


def cell_label(filename: str, lineno: int) -> str:
    """How Jupyter names a line of a notebook cell ("Cell In[8], line 3") when `filename` is one
    of this kernel's cell files (ipykernel compiles each cell under a temporary file name and
    IPython's compiler maps those names to execution counts); "" for any other file."""
    if "IPython" not in sys.modules:  # not a kernel: nothing to map (and no import for it)
        return ""
    try:
        from IPython import get_ipython

        count = get_ipython().compile._filename_map.get(filename)  # type: ignore[union-attr]
    except Exception:  # no shell, or an IPython without the map
        return ""
    return f"Cell In[{count}], line {lineno}" if isinstance(count, int) else ""


def _frame_at(filename: str, lineno: int, name: str) -> types.FrameType | None:
    """A finished frame of a code object named `name` from `filename`, its last instruction on
    line `lineno` (where tools that read positions rather than `tb_lineno` look: IPython)."""
    try:
        code = compile("\n" * (lineno - 1) + "frame = sys._getframe()", filename, "exec")
        if name.isidentifier():
            code = code.replace(co_name=name)
        scope: dict[str, Any] = {"sys": sys}
        exec(code, scope)  # noqa: S102 - a constant statement, compiled here
        return scope["frame"]
    except Exception:
        return None


def _seed_source(filename: str, lineno: int, code: str) -> None:
    """Make `linecache` know the remote line when the file is not here to read."""
    if not code or filename in linecache.cache or os.path.exists(filename):
        return
    if lineno < 1 or lineno > 100_000:
        return
    lines = ["\n"] * (lineno - 1) + [code.rstrip("\n") + "\n"]
    linecache.cache[filename] = (sum(len(line) for line in lines), None, lines, filename)


def with_remote_frames(exc: BaseException, frames: list | None) -> BaseException:
    """`exc` with the remote `frames` ([file, line, name, code, label?], outermost first) as its
    traceback. A frame already there (the same file, line and function: a failure that passed
    through a parent shows its child's frames once) is not repeated."""
    tb: types.TracebackType | None = None
    seen: set[tuple[str, int, str]] = set()
    for entry in reversed((frames or [])[-MAX_FRAMES:]):
        try:
            filename, lineno, name, code = str(entry[0]), int(entry[1]), str(entry[2]), str(entry[3] or "")
        except (TypeError, ValueError, IndexError):
            continue
        lineno = min(max(lineno, 1), 100_000)
        if (filename, lineno, name) in seen:
            continue
        seen.add((filename, lineno, name))
        frame = _frame_at(filename, lineno, name)
        if frame is None:
            continue
        _seed_source(filename, lineno, code)
        tb = types.TracebackType(tb, frame, frame.f_lasti, lineno)
    return exc.with_traceback(tb) if tb is not None else exc
