"""Log lines and metric points sent by running executions (the `telemetry` notification).

They arrive batched by the worker (about 100 entries or half a second) and are written with the
rest of the orchestrator's batch as executemany inserts, so a chatty task costs a few rows per
flush, not a transaction per line. Every entry is checked here: a bad one is dropped with the
reason logged, never the batch it came in or the run it belongs to.

On SQLite the lines' search index (FTS5, see server/store/search.py) is filled here too, with
the template, the values' names and their text (indexing the values' JSON through a per-row
trigger cost several times the rest of a line's write, measured). Lines are indexed up to
INDEX_AFTER seconds after they are written, many at a time: each transaction that writes the
index adds a segment to it, and a chatty fan-out would otherwise add one per batch. The lines
are durable either way; what the index lacks after a crash is indexed again when the server
starts (the index always holds a prefix of the line ids), and a search first indexes what waits.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sqlalchemy import func, select

from ..errors import BadRequest
from ..ids import run_of
from ..store import schema as t
from .model import Peer

log = logging.getLogger("coflux.orchestrator")

LEVELS = frozenset({"debug", "info", "warning", "error", "stdout", "stderr"})
MAX_ENTRIES = 10_000  # per notification
MAX_TEMPLATE = 100_000  # characters
MAX_FIELDS = 100
MAX_KEY = 200

_SEARCH_INSERT = "INSERT INTO logs_fts(rowid, body) VALUES (?, ?)"
INDEX_AFTER = 1.0  # seconds a line may wait for the search index
INDEX_BATCH = 5000  # lines that are indexed at once, whatever their age
CATCH_UP_CHUNK = 10_000


def _search_text(template: str | None, fields: dict | None) -> str:
    """What `coflux logs --search` finds a line by: its template, its values' names and text."""
    parts = [template or ""]
    for name, value in (fields or {}).items():
        v = value["v"]
        parts.append(name)
        parts.append(v if type(v) is str else str(v) if type(v) in _SCALARS else json.dumps(v, ensure_ascii=False))
    return " ".join(parts)


_SCALARS = (int, float, bool, type(None))


def _number(value: Any) -> float | None:
    """A finite JSON number (not a bool) as a float, else None. Compared before converting, so a
    huge integer is refused rather than overflowing; NaN fails the comparison."""
    kind = type(value)
    if kind is not float and kind is not int:
        return None
    return float(value) if -1e300 < value < 1e300 else None


def _wire(value: Any) -> bool:
    return isinstance(value, dict) and "v" in value and isinstance(value.get("refs", []), list)


class TelemetryMixin:
    def _next_log_ids(self, count: int) -> int:
        """The first of `count` new log line ids: assigned here (the single writer), so a line's
        id is known in the event that announces it and serves as a `coflux logs` cursor."""
        return self._next_ids("_log_id_next", t.logs, count)

    def _next_point_ids(self, count: int) -> int:
        """The first of `count` new metric point ids (as for log lines: the feed refers to them)."""
        return self._next_ids("_point_id_next", t.metric_points, count)

    def _next_ids(self, counter: str, table: Any, count: int) -> int:
        # The next id is read from the table once (and again after a rolled-back batch, which
        # resets the counter): the orchestrator is the only writer.
        first = getattr(self, counter)
        if first is None:
            self.w.flush()
            first = (self.db.execute(select(func.max(table.c.id))).scalar() or 0) + 1
        setattr(self, counter, first + count)
        return first

    def _on_telemetry(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        execution_id = params.get("execution")
        if not isinstance(execution_id, str):
            raise BadRequest("telemetry needs an 'execution'")
        session_id = self.peer_sessions.get(peer)
        if session_id is None or self.active.get(execution_id) != session_id:
            # Only the worker running an execution may speak for it.
            raise BadRequest(f"execution {execution_id} is not running on this connection's worker")
        batch = params.get("batch")
        if isinstance(batch, bool) or not isinstance(batch, int) or not 0 < batch < 2**31:
            raise BadRequest("telemetry needs a 'batch' number")
        if params.get("resent"):  # it may have been written before the connection dropped
            self.w.flush()
            seen = self.db.execute(select(t.telemetry_batches.c.batch).where(
                t.telemetry_batches.c.execution_id == execution_id, t.telemetry_batches.c.batch == batch)).first()
            if seen is not None:
                self._reply(peer, request_id, {"ok": True, "duplicate": True})
                return
        self.w.insert_ignore(t.telemetry_batches, {"execution_id": execution_id, "batch": batch})
        run_id = run_of(execution_id)
        now = time.time()
        lines = self._telemetry_logs(run_id, execution_id, params.get("logs"), now)
        definitions = self._telemetry_definitions(run_id, execution_id, params.get("definitions"), now)
        points, first_point = self._telemetry_points(run_id, execution_id, params.get("points"))
        # The feed's rows keep the ranges of ids only: the lines and points are rows already.
        if lines:
            self._publish(f"run:{run_id}", {"type": "logs", "execution": execution_id, "lines": lines},
                          {"type": "logs", "execution": execution_id, "first": lines[0]["id"], "count": len(lines)})
        if definitions or points:
            self._publish(f"run:{run_id}", {"type": "metrics", "execution": execution_id,
                                            "definitions": definitions, "points": points},
                          {"type": "metrics", "execution": execution_id, "definitions": definitions,
                           "first": first_point, "count": len(points)})
        self._reply(peer, request_id, {"ok": True})

    def _telemetry_logs(self, run_id: str, execution_id: str, entries: Any, now: float) -> list[dict]:
        if not entries:
            return []
        if not isinstance(entries, list):
            raise BadRequest("logs must be a list of [level, template, values, at]")
        good = []
        for entry in entries[:MAX_ENTRIES]:
            if not isinstance(entry, list) or len(entry) != 4:
                continue
            level, template, fields, at = entry
            if level not in LEVELS or (template is not None and not isinstance(template, str)):
                continue
            if fields is not None and (not isinstance(fields, dict) or len(fields) > MAX_FIELDS
                                       or not all(isinstance(k, str) and _wire(v) for k, v in fields.items())):
                continue
            at = _number(at)
            good.append((level, template[:MAX_TEMPLATE] if template else template, fields or None,
                         at if at is not None and abs(at - now) < 86400 * 366 else now))
        if len(good) < len(entries):
            log.warning("dropped %d malformed log entries from %s", len(entries) - len(good), execution_id)
        first = self._next_log_ids(len(good)) if good else 0
        lines = []
        index = self.engine.dialect.name == "sqlite"  # PostgreSQL indexes by itself (an expression index)
        for offset, (level, template, fields, at) in enumerate(good):
            line = {"id": first + offset, "execution_id": execution_id, "level": level,
                    "template": template, "fields": fields, "at": at}
            self.w.insert(t.logs, {**line, "run_id": run_id})
            if index:
                self._unindexed.append((line["id"], template, fields))
            lines.append(line)
        if index and lines:
            if len(self._unindexed) >= INDEX_BATCH:
                self.index_pending()
            elif not self._index_timer:
                self._index_timer = True
                self._add_timer(now + INDEX_AFTER, "index", None)
        return lines

    def index_pending(self) -> None:
        """(In a batch) add the lines that wait for the search index to it, in this transaction."""
        pending, self._unindexed = self._unindexed, []
        for line_id, template, fields in pending:
            self.w.raw(_SEARCH_INSERT, (line_id, _search_text(template, fields)))

    def _index_unindexed(self) -> None:
        """(SQLite, at load) index the lines a crash or a rolled-back batch left out of it."""
        if self.engine.dialect.name != "sqlite":
            return
        self.w.flush()
        done = self.db.exec_driver_sql("SELECT max(id) FROM logs_fts_docsize").scalar() or 0
        c = t.logs.c
        while True:
            rows = self.db.execute(select(c.id, c.template, c.fields).where(c.id > done)
                                   .order_by(c.id).limit(CATCH_UP_CHUNK)).all()
            if not rows:
                return
            self._unindexed.extend((r.id, r.template, r.fields) for r in rows)
            self.index_pending()
            self.w.flush()
            done = rows[-1].id

    def _telemetry_definitions(self, run_id: str, execution_id: str, definitions: Any, now: float) -> dict:
        if not definitions:
            return {}
        if not isinstance(definitions, dict):
            raise BadRequest("definitions must be an object of key -> {group, scale}")
        good = {}
        for key, definition in list(definitions.items())[:MAX_ENTRIES]:
            if not isinstance(key, str) or not key or len(key) > MAX_KEY or not isinstance(definition, dict):
                continue
            group, scale = definition.get("group"), definition.get("scale")
            if (group is not None and not isinstance(group, dict)) or (scale is not None and not isinstance(scale, dict)):
                continue
            good[key] = {"group": group, "scale": scale}
            self.w.insert_ignore(t.metric_definitions, {"execution_id": execution_id, "key": key, "run_id": run_id,
                                                        "group": group, "scale": scale, "created_at": now})
        return good

    def _telemetry_points(self, run_id: str, execution_id: str, points: Any) -> tuple[list[list], int]:
        """The good points, and the id of the first (they are numbered consecutively)."""
        if not points:
            return [], 0
        if not isinstance(points, list):
            raise BadRequest("points must be a list of [key, x, value]")
        good = []
        for point in points[:MAX_ENTRIES]:
            if not isinstance(point, list) or len(point) != 3 or not isinstance(point[0], str) \
                    or not point[0] or len(point[0]) > MAX_KEY:
                continue
            x, value = _number(point[1]), _number(point[2])
            if x is None or value is None:
                continue
            good.append([point[0], x, value])
        if len(good) < len(points):
            log.warning("dropped %d malformed metric points from %s", len(points) - len(good), execution_id)
        first = self._next_point_ids(len(good)) if good else 0
        for offset, (key, x, value) in enumerate(good):
            self.w.insert(t.metric_points, {"id": first + offset, "run_id": run_id, "execution_id": execution_id,
                                            "key": key, "x": x, "value": value})
        return good, first
