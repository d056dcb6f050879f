"""`coflux logs`, `coflux metrics`, `coflux runs list`, `coflux queue` and `coflux sessions list`:
what runs reported, what waits and who works, from a terminal.

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
from .cli_http import CommandError, parse_target, plain_http, run_path

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
        ("execution", {"nargs": "?", "metavar": "RUN:STEP[:ATTEMPT]", "help": "only this attempt (or step)"}),
        ("--step", {"metavar": "STEP", "help": "only this step (RUN:N)"}),
        ("--from", {"dest": "from_ms", "type": _epoch_ms, "metavar": "MS",
                    "help": "only lines from this time on: milliseconds since the epoch (UTC)"}),
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

    p = sub.add_parser("queue", help="executions that have not started, oldest first, and why each waits",
                       populate=arguments(
        connection_flags,
        ("--limit", {"type": int, "default": 500, "help": "show at most this many (1 to 5000; default 500)"}),
        ("--no-watch", {"action": "store_true", "help": "print once (the default when stdout is not a terminal)"}),
        ("-o", "--output", {"choices": ["text", "json"], "default": "text"})))
    p.set_defaults(fn=cmd_queue)

    sessions = sub.add_parser("sessions", help="worker sessions").add_subparsers(dest="sessions_command",
                                                                               required=True)
    p = sessions.add_parser("list", help="worker sessions (headless workers and kernels) and what they run",
                            populate=arguments(
        connection_flags,
        ("--watch", {"action": "store_true", "help": "keep showing them, refreshed every 2 s (Ctrl-C ends)"}),
        ("-o", "--output", {"choices": ["text", "json"], "default": "text"})))
    p.set_defaults(fn=cmd_sessions_list)

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


def _epoch_ms(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time in milliseconds since the epoch: {text!r}") from None
    if not 0 <= value < 4_102_444_800_000:  # before 2100
        raise argparse.ArgumentTypeError(f"not a time in milliseconds since the epoch: {text!r}")
    return value


def _log_filters(args: argparse.Namespace) -> None:
    """Check `logs`' positional RUN:STEP[:ATTEMPT] and set what the server filters by (the step)
    and what is filtered here (the attempt, --from)."""
    args.attempt = None
    if args.execution is None:
        return
    run_id, step_id, attempt_id = parse_target(args.execution, "RUN:STEP or RUN:STEP:ATTEMPT")
    if step_id is None:
        raise CommandError(f"malformed target {args.execution!r}: expected RUN:STEP or RUN:STEP:ATTEMPT "
                           "(e.g. R7xk:2:1)")
    if run_id != args.run:
        raise CommandError(f"{args.execution!r} is not of run {args.run!r}")
    if args.step and args.step != step_id:
        raise CommandError(f"--step {args.step} and {args.execution} name different steps")
    args.step, args.attempt = step_id, attempt_id


def _format(line: dict) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(line["at"])) + f".{int(line['at'] * 1000) % 1000:03d}"
    return f"{stamp} {line['execution_id']:<16} {LEVEL_MARK.get(line['level'], line['level']):<5} {line['message']}"


def _wanted(args: argparse.Namespace) -> Callable[[dict], bool]:
    words = [w.lower() for w in (args.search or "").split()]

    def wanted(line: dict) -> bool:
        if args.step and not line["execution_id"].startswith(args.step + ":"):
            return False
        if args.attempt and line["execution_id"] != args.attempt:
            return False
        if args.from_ms is not None and line["at"] * 1000 < args.from_ms:
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


def _shown(args: argparse.Namespace) -> Callable[[dict], bool]:
    """What is filtered here of the lines the server sent (it filters by step, level, words)."""
    attempt, from_ms = args.attempt, args.from_ms

    def shown(raw: dict) -> bool:
        return ((attempt is None or raw["execution_id"] == attempt)
                and (from_ms is None or raw["at"] * 1000 >= from_ms))
    return shown


def _print_history(read_page: Callable[[int], dict], emit: Callable[[dict], None], after: int = 0,
                   shown: Callable[[dict], bool] | None = None) -> tuple[int, int]:
    """Print the stored lines after line id `after` (those `shown`), a page at a time; returns
    the last id and how many were printed."""
    printed = 0
    while True:
        page = read_page(after)
        # In time order: executions flush their lines in batches, so ids follow arrival.
        for raw in sorted(page["lines"], key=lambda line: (line["at"], line["id"])):
            if shown is None or shown(raw):
                emit(_log_line(raw))
                printed += 1
        after = page["last"]
        if not page["more"]:
            return after, printed


def _check_attempt(args: argparse.Namespace, snapshot: dict) -> None:
    """An attempt that printed no line: CommandError if the run has no such attempt."""
    if args.attempt is None:
        return
    if not any(e["id"] == args.attempt for step in snapshot["steps"] for e in step["executions"]):
        raise CommandError(f"no execution {args.attempt!r}")


@plain_http
def cmd_logs(args: argparse.Namespace) -> int:
    _log_filters(args)
    emit = _emitter(args)
    if args.follow:
        return _follow_logs(args, emit)
    with make_api(args) as api:
        path = run_path(args.run, "/logs")
        _, printed = _print_history(lambda after: api.get(path, step=args.step, level=args.level, search=args.search,
                                                          after=after, limit=5000), emit, shown=_shown(args))
        if not printed and args.attempt is not None:
            _check_attempt(args, api.get(run_path(args.run), view="inspect"))
    return 0


def _follow_logs(args: argparse.Namespace, emit: Callable[[dict], None]) -> int:
    """The history, then live lines from the event feed until the run ends (across reconnects)."""
    import queue
    import threading

    with make_client(args) as client:
        run_id = args.run
        events: queue.Queue = queue.Queue()
        done = threading.Event()
        snapshot = client.subscribe(f"run:{run_id}", events.put)  # first: nothing committed after the history read is missed
        _check_attempt(args, snapshot)

        def read_page(after: int, limit: int = 5000) -> dict:
            return client.connection.call("get_logs", {"run": run_id, "step": args.step, "level": args.level,
                                                       "search": args.search, "after": after, "limit": limit})
        shown = _shown(args)
        last, _ = _print_history(read_page, emit, shown=shown)
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
            if shown(raw):
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


# ------------------------------------------------------------------ queue, sessions


def _watching(render: Callable[[], list[str]], watch: bool, interval: float = 2.0) -> int:
    """Print `render()`'s lines once, or (`watch`) redraw them every `interval` seconds until
    Ctrl-C."""
    if not watch:
        sys.stdout.write("".join(line + "\n" for line in render()))
        return 0
    try:
        while True:
            lines = render()
            sys.stdout.write("\033[H\033[J" + time.strftime("%H:%M:%S  (Ctrl-C to stop)\n")
                             + "".join(line + "\n" for line in lines))
            sys.stdout.flush()
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0


def _age(at: float | None) -> str:
    if at is None:
        return "?"
    seconds = max(0.0, time.time() - at)
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 \
        else f"{seconds / 3600:.1f} h"


def _queue_lines(queue: dict) -> list[str]:
    entries, total = queue["queue"], queue["total"]
    lines = [f"{total} execution(s) not started" + (f" (the {len(entries)} oldest shown)" if total > len(entries)
                                                   else "")]
    for e in entries:
        if e.get("assigned"):
            why = f"assigned to {e.get('worker') or e.get('session') or 'a worker'}, not started yet"
        else:
            why = e.get("waiting") or "waiting"
        lines.append(f"  {e['id']}  {e['module']}/{e['target']} ({e['type']})  queued {_age(e.get('created_at'))}"
                     f"  {why}")
    return lines


@plain_http
def cmd_queue(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 5000:
        raise CommandError(f"--limit must be from 1 to 5000, not {args.limit}")
    with make_api(args) as api:
        if args.output == "json":
            print(json.dumps(api.get("queue", limit=args.limit), indent=2))
            return 0
        return _watching(lambda: _queue_lines(api.get("queue", limit=args.limit)),
                         not args.no_watch and sys.stdout.isatty())


def _session_lines(workers: list[dict]) -> list[str]:
    if not workers:
        return ["no worker sessions"]
    lines = []
    for w in workers:
        tags = "".join(f"  {label} " + ",".join(f"{k}:{v}" for k, vs in (w.get(key) or {}).items() for v in vs)
                       for key, label in (("provides", "provides"), ("accepts", "accepts")) if w.get(key))
        lines.append(f"{w['id']}  {w.get('name') or '-'}  {w['kind']}  "
                     f"{'connected' if w['connected'] else 'disconnected'}  "
                     f"running {len(w['running'])}/{w['concurrency']}  {len(w['targets'])} target(s){tags}")
        for execution in w["running"]:
            lines.append(f"  {execution}")
    return lines


@plain_http
def cmd_sessions_list(args: argparse.Namespace) -> int:
    with make_api(args) as api:
        if args.output == "json":
            print(json.dumps(api.get("workers")["workers"], indent=2))
            return 0
        return _watching(lambda: _session_lines(api.get("workers")["workers"]), args.watch)


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
