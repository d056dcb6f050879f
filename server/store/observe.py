"""Read queries of what executions reported: log lines, metrics, and the event feed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, or_, select

from ..errors import BadRequest, NotFound
from . import schema as t
from . import search
from .jsontext import loads

# `--level L` shows L and above; captured stdout counts as info and stderr as warning.
SEVERITY = {"debug": 10, "stdout": 20, "info": 20, "stderr": 30, "warning": 30, "error": 40}
MAX_LINES = 10_000


def _levels_from(level: str) -> list[str]:
    if level not in SEVERITY:
        raise BadRequest(f"level must be one of {', '.join(SEVERITY)}, not {level!r}")
    if level in ("stdout", "stderr"):
        return [level]  # the captured stream itself
    return [name for name, rank in SEVERITY.items() if rank >= SEVERITY[level]]


def _check_run(db: Any, run_id: str) -> None:
    if db.execute(select(t.runs.c.id).where(t.runs.c.id == run_id)).first() is None:
        raise NotFound(f"no run {run_id!r}")


def _step_like(run_id: str, step: str | None) -> str | None:
    if not step:
        return None
    if step.count(":") != 1 or not step.startswith(run_id + ":"):
        raise BadRequest(f"step must be a step of {run_id} ({run_id}:N), not {step!r}")
    return step.replace("%", "") + ":%"


def _line(line_id: int, execution_id: str, entry: list) -> dict:
    level, template, fields, at = entry
    return {"id": line_id, "execution_id": execution_id, "level": level, "template": template,
            "fields": fields, "at": at}


_BATCHES = 200  # batch rows read at a time


def get_logs(engine: Engine, run_id: str, *, step: str | None = None, level: str | None = None,
             search_text: str | None = None, after: int = 0, limit: int = 1000) -> dict:
    """A run's log lines in order (after line id `after`), filtered by step, level and words."""
    limit = max(1, min(int(limit), MAX_LINES))
    step_like = _step_like(run_id, step)
    levels = _levels_from(level) if level else None
    with engine.connect() as db:
        _check_run(db, run_id)
        if search_text and search_text.split():
            found = search.matching_lines(db, search_text, run_id=run_id, after=after, limit=limit,
                                          step_like=step_like, levels=levels)
            lines = [_line(*match) for match in found]
        else:
            lines = _read_lines(db, run_id, after, limit, step_like, levels)
        seq = db.execute(select(func.max(t.events.c.seq))).scalar() or 0
    return {"lines": lines, "last": lines[-1]["id"] if lines else after, "more": len(lines) == limit,
            "seq": seq}


def _read_lines(db: Any, run_id: str, after: int, limit: int, step_like: str | None,
                levels: list[str] | None) -> list[dict]:
    c = t.telemetry.c
    # The batch that may hold line `after + 1` starts at or before it; the rest come after it.
    start = db.execute(select(func.max(c.id)).where(c.run_id == run_id, c.id <= after + 1)).scalar() or 0
    query = select(c.id, c.execution_id, c.lines, c.wide_ints).where(c.run_id == run_id, c.line_count > 0)
    if step_like:
        query = query.where(c.execution_id.like(step_like))
    if levels is not None:
        mask = sum(t.LEVEL_BITS[name] for name in levels)
        query = query.where(c.levels.op("&")(mask) != 0)
    lines: list[dict] = []
    while True:
        rows = db.execute(query.where(c.id >= start).order_by(c.id).limit(_BATCHES)).all()
        for batch_id, execution_id, lines_json, wide_ints in rows:
            for offset, entry in enumerate(loads(lines_json, wide_ints)):
                line_id = batch_id + offset
                if line_id > after and (levels is None or entry[0] in levels):
                    lines.append(_line(line_id, execution_id, entry))
                    if len(lines) == limit:
                        return lines
        if len(rows) < _BATCHES:
            return lines
        start = rows[-1][0] + 1


def get_metrics(engine: Engine, run_id: str) -> dict:
    """Every metric series of a run: definitions (group, scale) and points, per execution."""
    c = t.telemetry.c
    with engine.connect() as db:
        _check_run(db, run_id)
        rows = db.execute(select(c.execution_id, c.points, c.definitions, c.wide_ints)
                          .where(c.run_id == run_id, or_(c.point_count > 0, c.definitions.isnot(None)))
                          .order_by(c.id)).all()
        seq = db.execute(select(func.max(t.events.c.seq))).scalar() or 0
    series: dict[tuple[str, str], dict] = {}

    def entry(execution_id: str, key: str) -> dict:
        found = series.get((execution_id, key))
        if found is None:
            found = series[(execution_id, key)] = {"execution_id": execution_id, "key": key, "group": None,
                                                   "scale": None, "points": [], "_defined": False}
        return found

    for execution_id, points_json, definitions_json, wide_ints in rows:
        for key, definition in (loads(definitions_json) if definitions_json else {}).items():
            found = entry(execution_id, key)
            if not found["_defined"]:  # the first definition of a key counts
                found.update(group=definition.get("group"), scale=definition.get("scale"), _defined=True)
        for key, x, value in loads(points_json, wide_ints) if points_json else ():
            entry(execution_id, key)["points"].append([x, value])
    for found in series.values():
        del found["_defined"]
    return {"series": list(series.values()), "seq": seq}


def get_events(engine: Engine, topic: str, after: int, limit: int = 5000) -> list[dict]:
    """Events of a topic after sequence number `after` (what a viewer missed), in order. A row
    holds the events of one topic from one flush; its `seq` is the last of them. Log lines and
    metric points are stored as the ids of their first entry and their count, and come back
    whole, as they went out live."""
    with engine.connect() as db:
        rows = db.execute(select(t.events.c.data).where(t.events.c.topic == topic, t.events.c.seq > after)
                          .order_by(t.events.c.seq).limit(limit)).all()
        events = [event for r in rows for event in r.data.get("events", ()) if event.get("seq", 0) > after]
        batches: dict[int, Any] = {}
        return [_expanded(db, event, batches) if "first" in event and event.get("type") in ("logs", "metrics")
                else event for event in events]


def _expanded(db: Any, event: dict, batches: dict[int, Any]) -> dict:
    """A stored `logs` or `metrics` event with the lines or points of its id range read back."""
    first, count = int(event["first"]), int(event["count"])
    full = {k: v for k, v in event.items() if k not in ("first", "count")}
    c = t.telemetry.c
    batch_id = db.execute(select(func.max(c.id)).where(c.id <= first)).scalar()
    row = batches.get(batch_id) if batch_id is not None else None
    if row is None and batch_id is not None:
        row = batches[batch_id] = db.execute(select(c.id, c.execution_id, c.line_count, c.lines, c.points,
                                                    c.wide_ints)
                                             .where(c.id == batch_id)).first()
    if event.get("type") == "logs":
        entries = loads(row.lines, row.wide_ints) if row is not None and row.lines else []
        offset = first - batch_id if row is not None else 0
        full["lines"] = [_line(first + k, row.execution_id, entry)
                         for k, entry in enumerate(entries[offset:offset + count])]
    else:
        entries = loads(row.points, row.wide_ints) if row is not None and row.points else []
        offset = first - batch_id - row.line_count if row is not None else 0
        full["points"] = [list(point) for point in entries[offset:offset + count]] if count else []
    return full


def latest_seq(engine: Engine) -> int:
    with engine.connect() as db:
        return db.execute(select(func.max(t.events.c.seq))).scalar() or 0
