"""Write `src/api/protocol.ts` from `coflux/protocol.py`, so the front-end never spells a wire name
the server does not know.

    python jupyter_ext/frontend/scripts/gen_protocol.py          # write the file
    python jupyter_ext/frontend/scripts/gen_protocol.py --check  # exit 1 if it is stale (CI)

Enums become `as const` objects with a union type of their values, sets become `ReadonlySet`s,
tables and numbers become constants, and each feed event `TypedDict` becomes an interface; the
union of them, with the `seq` every pushed event carries, is `FeedEvent`.
"""

from __future__ import annotations

import argparse
import enum
import sys
import types
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
OUTPUT = ROOT / "jupyter_ext" / "frontend" / "src" / "api" / "protocol.ts"
sys.path.insert(0, str(ROOT))

from coflux import protocol  # noqa: E402 (after the path is set)

ENUMS = ["Op", "LoopOp", "Push", "ResultKind", "ExecutionState", "RunState", "InputState"]
SETS = ["HOLDABLE_OPS", "FINAL_KINDS", "FAILURE_KINDS", "WORKER_RESULT_KINDS", "RUN_EVENT_TYPES"]
TABLES = ["STATUS_RANK", "RUN_STATE_OF"]
NUMBERS = ["FINAL_RANK", "MAX_SECONDS", "MAX_MESSAGE_BYTES", "MAX_REQUEST_KEY", "MAX_IDEMPOTENCY_KEY",
           "MAX_VALUE_DEPTH"]
STRINGS = ["RUNS_TOPIC", "WORKERS_TOPIC", "STUCK_REASON"]
SHAPES = ["ErrorSummary", "LogLine", "RunOutcome"]  # TypedDicts that events (and payloads) contain


def _ts_type(hint: typing.Any) -> str:
    origin = typing.get_origin(hint)
    if hint is type(None):
        return "null"
    if hint is str:
        return "string"
    if hint in (int, float):
        return "number"
    if hint is bool:
        return "boolean"
    if hint is typing.Any:
        return "unknown"
    if origin is typing.Literal:
        return " | ".join(f'"{value}"' for value in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_ts_type(arg) for arg in typing.get_args(hint))
    if origin is list:
        (item,) = typing.get_args(hint)
        inner = _ts_type(item)
        return f"({inner})[]" if " " in inner else f"{inner}[]"
    if origin is dict:
        key, value = typing.get_args(hint)
        return f"Record<{_ts_type(key)}, {_ts_type(value)}>"
    if typing.is_typeddict(hint):
        return hint.__name__
    raise TypeError(f"no TypeScript form for {hint!r}")


def _interface(cls: type) -> list[str]:
    hints = typing.get_type_hints(cls)
    lines = [f"export interface {cls.__name__} {{"]
    for name, hint in hints.items():
        optional = "" if name in cls.__required_keys__ else "?"
        lines.append(f"  {name}{optional}: {_ts_type(hint)};")
    return lines + ["}"]


def _literal(value: typing.Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def render() -> str:
    out = ["// Generated from coflux/protocol.py by scripts/gen_protocol.py: do not edit by hand.",
           "// CI fails when this file differs from what the script writes.", ""]
    for name in ENUMS:
        members: type[enum.Enum] = getattr(protocol, name)
        out.append(f"export const {name} = {{")
        out += [f'  {member.name}: "{member.value}",' for member in members]
        out += ["} as const;", f"export type {name} = (typeof {name})[keyof typeof {name}];", ""]
    for name in SETS:
        values = sorted(str(value) for value in getattr(protocol, name))
        out.append(f"export const {name}: ReadonlySet<string> = new Set([{', '.join(map(_literal, values))}]);")
    out.append("")
    for name in TABLES:
        table = getattr(protocol, name)
        entries = ", ".join(f'"{key}": {_literal(str(value) if isinstance(value, str) else value)}'
                            for key, value in table.items())
        kind = "string" if all(isinstance(v, str) for v in table.values()) else "number"
        out.append(f"export const {name}: Readonly<Record<string, {kind}>> = {{ {entries} }};")
    for name in NUMBERS:
        out.append(f"export const {name} = {getattr(protocol, name)!r};")
    for name in STRINGS:
        out.append(f'export const {name} = "{getattr(protocol, name)}";')
    out.append("")
    for name in SHAPES:
        out += _interface(getattr(protocol, name)) + [""]
    names = []
    for cls in protocol.EVENT_TYPES.values():
        out += _interface(cls) + [""]
        names.append(cls.__name__)
    out += ["/** Any event of the feed, as pushed: its `type` tells which; `seq` is its feed position. */",
            f"export type FeedEvent = ({' | '.join(names)}) & {{ seq: number }};", ""]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is not what would be written")
    text = render()
    if parser.parse_args().check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run python {Path(__file__).relative_to(ROOT)}",
                  file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
