"""`coflux logs`, `coflux metrics` and `coflux runs list`: what runs reported, from a terminal.

All but `logs -f` read the server's JSON routes over plain HTTP (cli_http.py); following a run's
lines live takes the WebSocket client and its event feed.

Layer: the command line, on cli_base.py and cli_http.py (never cli.py, which adds its commands).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .cli_base import arguments, connection_flags, make_api, make_client
from .cli_http import CommandError, plain_http, run_path

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the CLI starts lighter
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

LEVEL_MARK = {"debug": "DEBUG", "info": "INFO", "warning": "WARN", "error": "ERROR", "stdout": "OUT",
              "stderr": "ERR"}
SEVERITY = {"debug": 10, "stdout": 20, "info": 20, "stderr": 30, "warning": 30, "error": 40}


def add_commands(sub: Any, runs: Any) -> None:
    """Add `logs`, `metrics` (to the commands) and `list` (to `runs`); each command's options are
    added when it is the one parsed."""
    p = sub.add_parser("logs", help="print a run's log lines and captured output", populate=arguments(
        connection_flags,
        ("run", {"metavar": "RUN"}),
        ("--step", {"metavar": "STEP", "help": "only this step (RUN:N)"}),
        ("--level", {"choices": list(SEVERITY), "help": "only this level and above (stdout/stderr: that stream)"}),
        ("--search", {"metavar": "TEXT", "help": "only lines containing these words"}),
        ("-f", "--follow", {"action": "store_true", "help": "keep printing new lines until the run ends"}),
        ("-o", "--output", {"choices": ["text", "json"], "default": "text"})))
    p.set_defaults(fn=cmd_logs)

    p = sub.add_parser("metrics", help="print a run's metric series with their groups and scales",
                       populate=arguments(connection_flags,
                                           ("run", {"metavar": "RUN"}),
                                           ("-o", "--output", {"choices": ["text", "json", "csv"], "default": "text"})))
    p.set_defaults(fn=cmd_metrics)

    p = runs.add_parser("list", help="list runs, newest first", populate=arguments(
        connection_flags,
        ("--workflow", {"metavar": "MODULE/NAME"}),
        ("--status", {"choices": ["running", "succeeded", "failed", "cancelled"]}),
        ("--limit", {"type": int, "default": 20}),
        ("-o", "--output", {"choices": ["text", "json"], "default": "text"})))
    p.set_defaults(fn=cmd_runs_list)


def _log_line(raw: dict) -> dict:
    """A stored line with its values decoded and its message rendered: `client.log_line`, which
    cannot be imported without the WebSocket stack (the client module loads its connection)."""
    from .logs import render
    from .serialization import to_display

    values = {}
    for name, wire in (raw.get("fields") or {}).items():
        try:
            values[name] = to_display(wire)
        except Exception:
            values[name] = wire.get("v")
    return {**raw, "values": values, "message": render(raw.get("template"), values)}


# ------------------------------------------------------------------ logs


def _format(line: dict) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(line["at"])) + f".{int(line['at'] * 1000) % 1000:03d}"
    return f"{stamp} {line['execution_id']:<16} {LEVEL_MARK.get(line['level'], line['level']):<5} {line['message']}"


def _wanted(args: argparse.Namespace) -> Callable[[dict], bool]:
    words = [w.lower() for w in (args.search or "").split()]

    def wanted(line: dict) -> bool:
        if args.step and not line["execution_id"].startswith(args.step + ":"):
            return False
        if args.level:
            if args.level in ("stdout", "stderr"):
                if line["level"] != args.level:
                    return False
            elif SEVERITY.get(line["level"], 0) < SEVERITY[args.level]:
                return False
        text = line["message"].lower()
        return all(w in text for w in words)
    return wanted


def _emitter(args: argparse.Namespace) -> Callable[[dict], None]:
    def emit(line: dict) -> None:
        if args.output == "json":
            print(json.dumps({k: line[k] for k in ("id", "execution_id", "level", "template", "values", "message",
                                                    "at")}, default=str), flush=args.follow)
        else:
            print(_format(line), flush=args.follow)
    return emit


def _print_history(read_page: Callable[[int], dict], emit: Callable[[dict], None], after: int = 0) -> int:
    """Print the stored lines after line id `after`, a page at a time; returns the last id."""
    while True:
        page = read_page(after)
        # In time order: executions flush their lines in batches, so ids follow arrival.
        for raw in sorted(page["lines"], key=lambda line: (line["at"], line["id"])):
            emit(_log_line(raw))
        after = page["last"]
        if not page["more"]:
            return after


@plain_http
def cmd_logs(args: argparse.Namespace) -> int:
    emit = _emitter(args)
    if args.follow:
        return _follow_logs(args, emit)
    with make_api(args) as api:
        path = run_path(args.run, "/logs")
        _print_history(lambda after: api.get(path, step=args.step, level=args.level, search=args.search,
                                             after=after, limit=5000), emit)
    return 0


def _follow_logs(args: argparse.Namespace, emit: Callable[[dict], None]) -> int:
    """The history, then live lines from the event feed until the run ends (across reconnects)."""
    import queue
    import threading

    with make_client(args) as client:
        run_id = args.run
        events: queue.Queue = queue.Queue()
        done = threading.Event()
        client.subscribe(f"run:{run_id}", events.put)  # first: nothing committed after the history read is missed

        def read_page(after: int, limit: int = 5000) -> dict:
            return client.connection.call("get_logs", {"run": run_id, "step": args.step, "level": args.level,
                                                       "search": args.search, "after": after, "limit": limit})
        last = _print_history(read_page, emit)
        wanted = _wanted(args)

        def wait_for_end() -> None:
            try:
                client.wait_run(run_id, None)
            finally:
                done.set()
                events.put(None)
        threading.Thread(target=wait_for_end, daemon=True).start()
        disconnected = False
        while True:
            event = events.get()
            if event is None:
                break
            if event.get("type") == "connection":
                if not event["connected"] and not disconnected:
                    print("coflux logs: disconnected from the server; reconnecting...", file=sys.stderr, flush=True)
                elif event["connected"] and disconnected:
                    print("coflux logs: reconnected", file=sys.stderr, flush=True)
                disconnected = not event["connected"]
                continue
            if event.get("type") != "logs":
                continue
            for raw in event["lines"]:
                if raw["id"] <= last:
                    continue  # printed already
                last = raw["id"]
                line = _log_line(raw)
                if wanted(line):
                    emit(line)
        # Lines of the run's last moments that the feed may still be delivering.
        for raw in read_page(last, 10000)["lines"]:
            emit(_log_line(raw))
    return 0


# ------------------------------------------------------------------ metrics


def _definition_text(series: dict) -> str:
    parts = []
    group = series.get("group")
    if group:
        parts.append(f"group {group['name']}" + (f" ({group['units']})" if group.get("units") else ""))
    scale = series.get("scale")
    if scale:
        bits = [scale.get("name") or "unnamed scale"]
        if scale.get("units"):
            bits.append(scale["units"])
        if scale.get("progress"):
            bits.append("progress")
        if scale.get("lower") is not None or scale.get("upper") is not None:
            bits.append(f"{scale.get('lower')}..{scale.get('upper')}")
        parts.append("scale " + ", ".join(bits))
    return "; ".join(parts)


@plain_http
def cmd_metrics(args: argparse.Namespace) -> int:
    with make_api(args) as api:
        series = api.get(run_path(args.run, "/metrics"))["series"]
    if args.output == "json":
        print(json.dumps(series, indent=2))
        return 0
    if args.output == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(["execution", "key", "group", "scale", "x", "value"])
        for s in series:
            group = (s.get("group") or {}).get("name", "")
            scale = (s.get("scale") or {}).get("name", "") or ""
            for x, value in s["points"]:
                writer.writerow([s["execution_id"], s["key"], group, scale, x, value])
        return 0
    if not series:
        print(f"{args.run}: no metrics")
    for s in series:
        points = s["points"]
        summary = (f"{len(points)} point(s), last {points[-1][1]:g} at x={points[-1][0]:g}" if points
                   else "no points")
        definition = _definition_text(s)
        print(f"{s['execution_id']}  {s['key']}  {summary}" + (f"  [{definition}]" if definition else ""))
    return 0


# ------------------------------------------------------------------ runs list


@plain_http
def cmd_runs_list(args: argparse.Namespace) -> int:
    module = target = None
    if args.workflow:
        module, slash, target = args.workflow.partition("/")
        if not slash or not module or not target:
            raise CommandError("'workflow' is MODULE/NAME")
    limit = max(1, min(args.limit, 1000))
    with make_api(args) as api:
        # The newest runs, filtered by state here (as the server's list_runs op filters them).
        runs = api.get("runs", module=module, target=target, limit=1000 if args.status else limit)["runs"]
    if args.status:
        runs = [run for run in runs if run["state"] == args.status][:limit]
    if args.output == "json":
        print(json.dumps(runs, indent=2))
        return 0
    for run in runs:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["created_at"]))
        print(f"{run['id']}  {run['module']}/{run['target']}  {run_outcome_text(run)}  {created}  "
              f"workspace {run['workspace']}" + (f"  (child of {run['parent']})" if run.get("parent") else ""))
    return 0


def run_outcome_text(run: dict) -> str:
    """A run's outcome as the server sends it (`state`, `status`, `duration`: one definition, in
    server/store/queries.py run_outcomes), for `runs list` and `runs inspect`: the state, the
    result kind behind it when that says more, and how long it ran (or has run so far)."""
    state, status = run.get("state") or "running", run.get("status") or "running"
    label = state if status in (state, "value") else f"{state} ({status})"
    if run.get("duration") is not None:
        return f"{label} in {run['duration']:.3f} s"
    started = run.get("started_at") or run["created_at"]
    return f"{label} for {max(0.0, time.time() - started):.1f} s"
