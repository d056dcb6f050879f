"""The durable event feed: every change a viewer can show is a row of `events`, written in the
same flush as the change, with a sequence number that viewers resume from.

The orchestrator is the only writer, so it numbers events itself: numbers are dense and in
commit order (a database sequence would be neither, under concurrent transactions), and the
number is known when the event is pushed live. The events of one topic written in one flush
share a row (`data.events`, the row's `seq` is the last of them): a fan-out's thousands of
events cost a few rows, not one each. Log lines and metric points are stored already (a batch to
a row of `telemetry`): their events keep only the range of their ids, and a viewer that resumes
gets them read back in full (store/observe.py), as a live viewer got them. After a rolled-back batch the next number is read
again from the table, so numbers a failed batch used are never seen.
"""

from __future__ import annotations

from sqlalchemy import func, select

from ..store import schema as t
from .component import Component


class Feed(Component):
    def append_event(self, topic: str, event: dict, stored: dict | None = None) -> dict:
        """Number `event` and record it; `stored`, if given, is what the row keeps instead (log
        lines and metric points as a range of their own rows' ids: see `expand_stored`)."""
        if self.ws.seq_next is None:
            self.w.flush()
            self.ws.seq_next = (self.db.execute(select(func.max(t.events.c.seq))).scalar() or 0) + 1
        seq = self.ws.seq_next
        self.ws.seq_next += 1
        event = {**event, "seq": seq}
        self.w.feed(topic, seq, event if stored is None else {**stored, "seq": seq})
        return event
