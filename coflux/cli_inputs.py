"""`coflux inputs list [--run R]`, `inputs inspect ID`, `inputs respond ID JSON` and `inputs
dismiss ID`: prompts raised by running code (`cf.Prompt`), answered over the server's HTTP API
(the routes a browser uses), with the names and output of Coflux's command line.

Layer: the command line, on cli_base.py and cli_http.py.
"""

from __future__ import annotations

import argparse
import json
import time

from .cli_base import arguments, connection_flags, make_api
from .cli_http import CommandError, plain_http

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "-"


def _tags(tags: dict | None) -> str:
    if not tags:
        return ""
    parts = []
    for key, value in tags.items():
        for one in value if isinstance(value, list) else [value]:
            parts.append(key if one is True else f"{key}:{one}")
    return ", ".join(parts)


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _input_id(text: str) -> str:
    if ":i" not in text or not text.startswith("R"):
        raise CommandError(f"not an input id: {text!r} (expected RUN:iN, as `coflux inputs list` shows)")
    return text


@plain_http
def cmd_inputs_list(args: argparse.Namespace) -> int:
    with make_api(args) as api:
        # Every workspace the caller may see, unless --workspace names one.
        inputs = api.get("inputs", run=args.run, workspace=args.workspace)["inputs"]
    if args.output == "json":
        print(json.dumps({entry["id"]: entry for entry in inputs}, indent=2))
        return 0
    if not inputs:
        print("No pending inputs.")
        return 0
    _table(["ID", "Run", "Workspace", "Execution", "Key", "Requires", "Created"],
           [[e["id"], e["run"], e.get("workspace") or "-", e["execution"], e.get("key") or "-",
             _tags(e.get("requires")), _when(e["created_at"])] for e in inputs])
    return 0


@plain_http
def cmd_inputs_inspect(args: argparse.Namespace) -> int:
    with make_api(args) as api:
        entry = api.get(f"inputs/{_input_id(args.input)}")
    if args.output == "json":
        print(json.dumps(entry, indent=2))
        return 0
    print(f"Input: {entry['id']}")
    if entry.get("title"):
        print(f"Title: {entry['title']}")
    if entry.get("key"):
        print(f"Key: {entry['key']}")
    print(f"Created: {_when(entry['created_at'])}")
    if entry.get("requires"):
        print(f"Requires: {_tags(entry['requires'])}")
    if entry.get("template"):
        print(f"\nPrompt: {_render(entry['template'], entry.get('placeholders') or {})}")
    if entry.get("schema") is not None:
        print("Schema:\n  " + json.dumps(entry["schema"], indent=2).replace("\n", "\n  "))
    print(f"\nStatus: {entry['state']}")
    if entry["state"] != "pending":
        print(f"Responded: {_when(entry.get('responded_at'))}" + (f" by {entry['by']}" if entry.get("by") else ""))
    if entry["state"] == "responded" and entry.get("value") is not None:
        print("Value:\n  " + json.dumps(entry["value"], indent=2).replace("\n", "\n  "))
    return 0


def _render(template: str, placeholders: dict) -> str:
    """The template with its placeholders ({k}, {{k}}, {{{k}}}) filled in, for a terminal."""
    import re

    from .serialization import to_display

    def fill(match: Any) -> str:
        wire = placeholders.get(match.group(2))
        if wire is None:
            return match.group(0)
        value = to_display(wire)
        return value if isinstance(value, str) else json.dumps(value)

    return re.sub(r"(\{{1,3})([A-Za-z_][A-Za-z0-9_]*)\}{1,3}", fill, template)


@plain_http
def cmd_inputs_respond(args: argparse.Namespace) -> int:
    try:
        value = json.loads(args.value) if args.value is not None else None
    except ValueError as exc:
        raise CommandError(f"invalid JSON value: {exc}") from None
    with make_api(args) as api:
        api.post(f"inputs/{_input_id(args.input)}/respond", {"value": value})
    if args.output == "json":
        print(json.dumps({"responded": True}))
    else:
        print(f"Input '{args.input}' responded.")
    return 0


@plain_http
def cmd_inputs_dismiss(args: argparse.Namespace) -> int:
    with make_api(args) as api:
        api.post(f"inputs/{_input_id(args.input)}/dismiss", {})
    if args.output == "json":
        print(json.dumps({"dismissed": True}))
    else:
        print(f"Input '{args.input}' dismissed.")
    return 0


def _output(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")


def add_commands(sub: Any) -> None:
    inputs = sub.add_parser("inputs", help="list and answer prompts raised by running code").add_subparsers(
        dest="inputs_command", required=True)
    p = inputs.add_parser("list", help="list pending inputs", populate=arguments(
        connection_flags, _output, ("--run", {"metavar": "RUN", "help": "only the inputs of this run"})))
    p.set_defaults(fn=cmd_inputs_list)
    p = inputs.add_parser("inspect", help="show a prompt's template, schema and current state", populate=arguments(
        connection_flags, _output, ("input", {"metavar": "INPUT_ID"})))
    p.set_defaults(fn=cmd_inputs_inspect)
    p = inputs.add_parser("respond", help="answer an input (the value as JSON; an approval needs none)",
                          populate=arguments(connection_flags, _output, ("input", {"metavar": "INPUT_ID"}),
                                             ("value", {"metavar": "JSON", "nargs": "?"})))
    p.set_defaults(fn=cmd_inputs_respond)
    p = inputs.add_parser("dismiss", help="dismiss a prompt", populate=arguments(
        connection_flags, _output, ("input", {"metavar": "INPUT_ID"})))
    p.set_defaults(fn=cmd_inputs_dismiss)
