"""Read queries of what executions reported: log lines, metrics, and the event feed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, or_, select

from ..errors import BadRequest, NotFound
from . import schema as t
from . import search

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


def get_logs(engine: Engine, run_id: str, *, step: str | None = None, level: str | None = None,
             search_text: str | None = None, after: int = 0, limit: int = 1000) -> dict:
    """A run's log lines in order (after line id `after`), filtered by step, level and words."""
    limit = max(1, min(int(limit), MAX_LINES))
    query = (select(t.logs.c.id, t.logs.c.execution_id, t.logs.c.level, t.logs.c.template, t.logs.c.fields,
                    t.logs.c.at)
             .where(t.logs.c.run_id == run_id, t.logs.c.id > after).order_by(t.logs.c.id).limit(limit))
    if step:
        if step.count(":") != 1 or not step.startswith(run_id + ":"):
            raise BadRequest(f"step must be a step of {run_id} ({run_id}:N), not {step!r}")
        query = query.where(or_(t.logs.c.execution_id.like(step.replace("%", "") + ":%")))
    if level:
        query = query.where(t.logs.c.level.in_(_levels_from(level)))
    with engine.connect() as db:
        _check_run(db, run_id)
        if search_text:
            query = search.matching(query, db, search_text, run_id=run_id, after=after)
        rows = db.execute(query).all()
        seq = db.execute(select(func.max(t.events.c.seq))).scalar() or 0
    lines = [{"id": r.id, "execution_id": r.execution_id, "level": r.level, "template": r.template,
              "fields": r.fields, "at": r.at} for r in rows]
    return {"lines": lines, "last": lines[-1]["id"] if lines else after, "more": len(lines) == limit,
            "seq": seq}


def get_metrics(engine: Engine, run_id: str) -> dict:
    """Every metric series of a run: definitions (group, scale) and points, per execution."""
    with engine.connect() as db:
        _check_run(db, run_id)
        definitions = db.execute(select(t.metric_definitions).where(t.metric_definitions.c.run_id == run_id)
                                 .order_by(t.metric_definitions.c.created_at)).all()
        points = db.execute(select(t.metric_points.c.execution_id, t.metric_points.c.key, t.metric_points.c.x,
                                   t.metric_points.c.value)
                            .where(t.metric_points.c.run_id == run_id).order_by(t.metric_points.c.id)).all()
        seq = db.execute(select(func.max(t.events.c.seq))).scalar() or 0
    series: dict[tuple[str, str], dict] = {}
    for d in definitions:
        series[(d.execution_id, d.key)] = {"execution_id": d.execution_id, "key": d.key, "group": d.group,
                                           "scale": d.scale, "points": []}
    for p in points:
        entry = series.setdefault((p.execution_id, p.key), {"execution_id": p.execution_id, "key": p.key,
                                                            "group": None, "scale": None, "points": []})
        entry["points"].append([p.x, p.value])
    return {"series": list(series.values()), "seq": seq}


def get_events(engine: Engine, topic: str, after: int, limit: int = 5000) -> list[dict]:
    """Events of a topic after sequence number `after` (what a viewer missed), in order. A row
    holds the events of one topic from one flush; its `seq` is the last of them. Log lines and
    metric points are stored as ranges of their rows' ids and come back whole, as they went
    out live."""
    with engine.connect() as db:
        rows = db.execute(select(t.events.c.data).where(t.events.c.topic == topic, t.events.c.seq > after)
                          .order_by(t.events.c.seq).limit(limit)).all()
        events = [event for r in rows for event in r.data.get("events", ()) if event.get("seq", 0) > after]
        return [_expanded(db, event) if "first" in event and event.get("type") in ("logs", "metrics") else event
                for event in events]


def _expanded(db: Any, event: dict) -> dict:
    """A stored `logs` or `metrics` event with the lines or points of its id range read back."""
    first, count = int(event["first"]), int(event["count"])
    full = {k: v for k, v in event.items() if k not in ("first", "count")}
    if event.get("type") == "logs":
        c = t.logs.c
        rows = db.execute(select(c.id, c.execution_id, c.level, c.template, c.fields, c.at)
                          .where(c.id >= first, c.id < first + count).order_by(c.id)).all()
        full["lines"] = [{"id": r.id, "execution_id": r.execution_id, "level": r.level, "template": r.template,
                          "fields": r.fields, "at": r.at} for r in rows]
    elif event.get("type") == "metrics":
        c = t.metric_points.c
        rows = db.execute(select(c.key, c.x, c.value).where(c.id >= first, c.id < first + count)
                          .order_by(c.id)).all() if count else []
        full["points"] = [[r.key, r.x, r.value] for r in rows]
    return full


def latest_seq(engine: Engine) -> int:
    with engine.connect() as db:
        return db.execute(select(func.max(t.events.c.seq))).scalar() or 0
