"""Log lines and metric points sent by running executions (`telemetry` requests, and the last
batch of each execution inside its `result`).

They arrive batched by the worker (about 100 entries or half a second) and each batch is one row
of `telemetry`, written with the rest of the orchestrator's batch: a chatty task costs a row per
flush, not a row per line and point. Every entry is checked here: a bad one is dropped with the
reason logged, never the batch it came in or the run it belongs to. When every entry is good,
the JSON text the worker sent is stored as it came (it is not encoded again).

On SQLite the lines' search index (FTS5, see server/store/search.py) is filled here too, a
document per batch: the template, the values' names and their text of each line. Batches are
indexed up to INDEX_AFTER seconds after they are written, many at a time: each transaction that
writes the index adds a segment to it, and a chatty fan-out would otherwise add one per batch.
The lines are durable either way; what the index lacks after a crash is indexed again when the
server starts (the index always holds a prefix of the batch ids), and a search first indexes
what waits.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sqlalchemy import select

from coflux.protocol import LogLine, LogsEvent, MetricsEvent, run_topic

from ..errors import BadRequest
from ..ids import run_of
from ..store import schema as t
from ..store import search
from ..store.jsontext import loads
from ..store.schema import LEVEL_BITS
from .component import Component
from .model import Peer

log = logging.getLogger("coflux.orchestrator")

LEVELS = frozenset(LEVEL_BITS)
MAX_ENTRIES = 10_000  # per notification
MAX_TEMPLATE = 100_000  # characters
MAX_FIELDS = 100
MAX_KEY = 200

_SEARCH_INSERT = "INSERT INTO logs_fts(rowid, body) VALUES (?, ?)"
INDEX_AFTER = 1.0  # seconds a line may wait for the search index
INDEX_BATCH = 5000  # lines that are indexed at once, whatever their age
CATCH_UP_CHUNK = 1000  # batches
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def _number(value: Any) -> float | None:
    """A finite JSON number (not a bool) as a float, else None. Compared before converting, so a
    huge integer is refused rather than overflowing; NaN fails the comparison."""
    kind = type(value)
    if kind is not float and kind is not int:
        return None
    return float(value) if -1e300 < value < 1e300 else None


class Telemetry(Component):
    def _next_telemetry_ids(self, count: int) -> int:
        """The first of `count` new ids of log lines and metric points: assigned here (the
        single writer), so an entry's id is known in the event that announces it and a line's
        id serves as a `coflux logs` cursor. Read from the table once (and again after a
        rolled-back batch, which resets the counter)."""
        first = self.ws.telemetry_id_next
        if first is None:
            self.w.flush()
            c = t.telemetry.c
            last = self.db.execute(select(c.id, c.line_count, c.point_count).order_by(c.id.desc()).limit(1)).first()
            first = last.id + max(1, last.line_count + last.point_count) if last is not None else 1
        self.ws.telemetry_id_next = first + max(1, count)  # a batch of definitions only takes an id too
        return first

    def on_telemetry(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        execution_id = params.get("execution")
        if not isinstance(execution_id, str):
            raise BadRequest("telemetry needs an 'execution'")
        session_id = self.ws.peer_sessions.get(peer)
        if session_id is None or self.ws.active.get(execution_id) != session_id:
            # Only the worker running an execution may speak for it.
            raise BadRequest(f"execution {execution_id} is not running on this connection's worker")
        recorded = self.record_telemetry(execution_id, params)
        self.o.reply(peer, request_id, {"ok": True} if recorded else {"ok": True, "duplicate": True})

    def record_telemetry(self, execution_id: str, params: dict) -> bool:
        """Record a batch of an active execution's log lines, metric definitions and points (a
        `telemetry` request's params, or what rides in its `result`): one row, and the events
        that announce it. False when the batch was recorded before (re-sent after a reconnect)."""
        batch = params.get("batch")
        if isinstance(batch, bool) or not isinstance(batch, int) or not 0 < batch < 2**31:
            raise BadRequest("telemetry needs a 'batch' number")
        # A worker sends an execution's batches in order, numbered from 1: one not above the last
        # seen is a repeat. After a server restart the memory is gone, and the database says.
        if batch <= self.ws.telemetry_batches.get(execution_id, 0):
            return False
        run_id = run_of(execution_id)
        if params.get("resent") and execution_id not in self.ws.telemetry_batches:
            self.w.flush()
            c = t.telemetry.c
            seen = self.db.execute(select(c.id).where(c.run_id == run_id, c.execution_id == execution_id,
                                                      c.batch == batch)).first()
            if seen is not None:
                return False
        now = time.time()
        wide = params.get("wide_ints") is True
        lines, lines_json = _good_lines(*_entries(params, "logs", wide), now, execution_id)
        definitions = _good_definitions(params.get("definitions"))
        points, points_json = _good_points(*_entries(params, "points", wide), execution_id)
        self.ws.telemetry_batches[execution_id] = batch  # a refused batch (above) is not seen
        if not (lines or definitions or points):
            return True
        first = self._next_telemetry_ids(len(lines) + len(points))
        levels = 0
        for line in lines:
            levels |= LEVEL_BITS[line[0]]
        self.w.insert(t.telemetry, {
            "id": first, "run_id": run_id, "execution_id": execution_id, "batch": batch, "at": now,
            "line_count": len(lines), "levels": levels, "lines": lines_json if lines else None,
            "point_count": len(points), "points": points_json if points else None,
            "definitions": json.dumps(definitions) if definitions else None, "wide_ints": wide})
        if lines:
            self.o.publish(run_topic(run_id), LogsEvent(type="logs", execution=execution_id, lines=[
                LogLine(id=first + k, execution_id=execution_id, level=level, template=template, fields=fields,
                        at=at) for k, (level, template, fields, at) in enumerate(lines)]),
                # The feed's row keeps the range of ids only: the lines are stored already.
                {"type": "logs", "execution": execution_id, "first": first, "count": len(lines)})
            self._index_lines(first, lines, now)
        if definitions or points:
            self.o.publish(run_topic(run_id), MetricsEvent(type="metrics", execution=execution_id,
                                                          definitions=definitions, points=points),
                          {"type": "metrics", "execution": execution_id, "definitions": definitions,
                           "first": first + len(lines), "count": len(points)})
        return True

    def _index_lines(self, first: int, lines: list[list], now: float) -> None:
        """(SQLite) queue the batch for the search index (PostgreSQL indexes by itself)."""
        if self.o.engine.dialect.name != "sqlite":
            return
        self.ws.unindexed.append((first, lines))
        self.ws.unindexed_lines += len(lines)
        if self.ws.unindexed_lines >= INDEX_BATCH:
            self.index_pending()
        elif not self.ws.index_timer:
            self.ws.index_timer = True
            self.o.add_timer(now + INDEX_AFTER, "index", None)

    def index_pending(self) -> None:
        """(In a batch) add the batches that wait for the search index to it, in this transaction."""
        pending, self.ws.unindexed, self.ws.unindexed_lines = self.ws.unindexed, [], 0
        size = search.DOCUMENT_LINES
        for batch_id, lines in pending:
            for start in range(0, len(lines), size):
                self.w.raw(_SEARCH_INSERT, (batch_id + start, search.document(lines[start:start + size])))

    def index_unindexed(self) -> None:
        """(SQLite, at load) index the batches a crash or a rolled-back batch left out of it."""
        if self.o.engine.dialect.name != "sqlite":
            return
        self.w.flush()
        done = self.db.exec_driver_sql("SELECT max(id) FROM logs_fts_docsize").scalar() or 0
        c = t.telemetry.c
        while True:
            rows = self.db.execute(select(c.id, c.lines, c.wide_ints).where(c.id > done, c.line_count > 0)
                                   .order_by(c.id).limit(CATCH_UP_CHUNK)).all()
            if not rows:
                return
            self.ws.unindexed.extend((row.id, loads(row.lines, row.wide_ints)) for row in rows)
            self.index_pending()
            self.w.flush()
            done = rows[-1].id


def _entries(params: dict, name: str, wide_ints: bool) -> tuple[Any, str | None]:
    """A batch's `logs` or `points`: sent as JSON text (`logs_json`, `points_json`, what the SDK
    does), or as a list. Returns the entries and the text they came as."""
    text = params.get(name + "_json")
    if text is None:
        return params.get(name), None
    if not isinstance(text, str):
        raise BadRequest(f"{name}_json must be a JSON text")
    try:
        return loads(text, wide_ints), text
    except ValueError:
        raise BadRequest(f"{name}_json is not valid JSON") from None


def _good_lines(entries: Any, text: str | None, now: float, execution_id: str) -> tuple[list[list], str]:
    """The well-formed log entries, [level, template, values, at], and their JSON text (the text
    they came as when nothing was dropped or changed); the rest are dropped, and said."""
    if not entries:
        return [], ""
    if not isinstance(entries, list):
        raise BadRequest("logs must be a list of [level, template, values, at]")
    good = []
    changed = False
    for entry in entries[:MAX_ENTRIES]:
        if type(entry) is not list or len(entry) != 4:
            continue
        level, template, fields, at = entry
        if level not in LEVELS or (template is not None and type(template) is not str):
            continue
        if fields is not None and not _good_fields(fields):
            continue
        if template and len(template) > MAX_TEMPLATE:
            entry = [level, template[:MAX_TEMPLATE], fields, at]
            changed = True
        if not fields and fields is not None:
            entry = [level, entry[1], None, at]
            changed = True
        if type(at) is not float or not abs(at - now) < 86400 * 366:
            number = _number(at)
            entry = [level, entry[1], entry[2], number if number is not None and abs(number - now) < 86400 * 366
                     else now]
            changed = True
        good.append(entry)
    if len(good) < len(entries):
        log.warning("dropped %d malformed log entries from %s", len(entries) - len(good), execution_id)
        changed = True
    return good, (_dumps(good) if changed or text is None else text)


def _good_fields(fields: Any) -> bool:
    """A line's values: names to wire values ({"v": ..., "refs"?: [...]})."""
    if type(fields) is not dict or len(fields) > MAX_FIELDS:
        return False
    for name, value in fields.items():
        if type(name) is not str or type(value) is not dict or "v" not in value:
            return False
        refs = value.get("refs")
        if refs is not None and type(refs) is not list:
            return False
    return True


def _good_definitions(definitions: Any) -> dict:
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
    return good


def _good_points(points: Any, text: str | None, execution_id: str) -> tuple[list[list], str]:
    """The well-formed points, [key, x, value] with finite numbers, and their JSON text."""
    if not points:
        return [], ""
    if not isinstance(points, list):
        raise BadRequest("points must be a list of [key, x, value]")
    good = []
    changed = False
    for point in points[:MAX_ENTRIES]:
        if type(point) is not list or len(point) != 3:
            continue
        key, x, value = point
        if type(key) is not str or not key or len(key) > MAX_KEY:
            continue
        if type(x) is not float or type(value) is not float or not (-1e300 < x < 1e300 and -1e300 < value < 1e300):
            x, value = _number(x), _number(value)
            if x is None or value is None:
                continue
            point = [key, x, value]
            changed = True
        good.append(point)
    if len(good) < len(points):
        log.warning("dropped %d malformed metric points from %s", len(points) - len(good), execution_id)
        changed = True
    return good, (_dumps(good) if changed or text is None else text)
