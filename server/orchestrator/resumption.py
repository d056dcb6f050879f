"""Resume from failure: a new attempt of a step whose children reuse what earlier attempts did.

`resume(step)` makes an attempt with cause `resume`. Each child its body then submits is matched
(admission rule `reuse_earlier_attempt`) against the children of the step's earlier attempts:
same target, same arguments, and the same code hash when both are known. A match whose outcome
is a value resolves at once as `cached` pointing at that value's execution ("reused from attempt
N"); everything else (failed, abandoned, cancelled, never reached) runs again.

The hot path stays a dictionary lookup: the earlier attempts' children are read once per resumed
step (one query, outcomes followed only for those that handed over to another execution) into
`ws.resumed`, call key -> executions with a value; their values go into the results cache in the
same pass, so a reused call's waiter is answered without a read of its own. A match is not used up: a call made twice
with equal arguments, or again after the resumed attempt suspends or is retried, reuses the same
value. A server restarted mid-resume reads the table again on the resumed attempt's first child;
a plain re-run of the step drops it (its children run afresh).
"""

from __future__ import annotations

from sqlalchemy import and_, select

from coflux.protocol import FAILURE_KINDS, ResultKind

from ..errors import BadRequest, NotFound
from ..store import schema as t
from .component import Component
from .model import Pending
from .rules import keys

RESUME_CAUSE = "resume"
# What a resume re-runs: the step's latest attempt ended without a value.
RESUMABLE_KINDS = frozenset(FAILURE_KINDS) | {ResultKind.CANCELLED}


class Reusable:
    """The value-bearing children of a step's earlier attempts, by call key."""

    __slots__ = ("by_key",)

    def __init__(self) -> None:
        self.by_key: dict[str, list[tuple[str, str | None]]] = {}  # call key -> [(execution, code hash)]

    def size(self) -> int:
        return sum(len(entries) for entries in self.by_key.values())

    def find(self, call_key: str, code_hash: str | None) -> str | None:
        for execution_id, known in self.by_key.get(call_key, ()):
            if code_hash is None or known is None or known == code_hash:
                return execution_id
        return None


class Resumption(Component):
    def resume(self, step_id: str, code_hash: str | None = None, by: str | None = None) -> dict:
        """A new attempt of a failed step that reuses its earlier attempts' successful children."""
        self.w.flush()
        rows = self.db.execute(select(t.executions.c.id).where(t.executions.c.step_id == step_id)
                               .order_by(t.executions.c.attempt)).scalars().all()
        if not rows:
            raise NotFound(f"no step {step_id!r} (expected RUN:STEP)")
        status, tail, result = self.o.follow(rows[-1])
        if status == "pending":
            raise BadRequest(f"step {step_id} is still running ({tail}); resume it once it has failed")
        if result[0] not in RESUMABLE_KINDS:
            raise BadRequest(f"step {step_id} did not fail (its latest attempt ended as {result[0]}); "
                             f"nothing to resume (re-run it instead)")
        latest = self.o.submission.pending_of(rows[-1])
        if latest.type == "workflow" and not step_id.endswith(":1"):
            raise BadRequest(f"step {step_id} started a child run; resume that run instead")
        self.ws.resumed[step_id] = self._load(list(rows))
        return self.o.control.rerun(step_id, cause=RESUME_CAUSE, code_hash=code_hash, by=by)

    def reusable(self, pending: Pending) -> str | None:
        """An earlier attempt's execution whose value this child may take (None: run it)."""
        parent = self.ws.assigned.get(pending.parent_id) if pending.parent_id else None
        if parent is None:
            return None
        table = self.ws.resumed.get(parent.step_id)
        if table is None:
            if parent.cause != RESUME_CAUSE:
                return None
            # The server restarted since the resume (or the table was evicted): read it again.
            earlier = [f"{parent.step_id}:{n}" for n in range(1, parent.attempt)]
            table = self._load(earlier)
            self.ws.resumed[parent.step_id] = table
        return table.find(self._call_key(pending.module, pending.target, pending.arguments), pending.code_hash)

    def _call_key(self, module: str, target: str, arguments: list) -> str:
        """The call's key, with each execution passed as an argument named by where its result
        came from (its successor chain followed): `consume(produce.submit(x))` in a resumed
        attempt passes the new, reused `produce` step, whose value is the earlier one's."""
        if any(isinstance(value, dict) and value.get("refs") for value in arguments):
            arguments = [self._followed(value) for value in arguments]
        return keys.call_key(module, target, arguments)

    def _followed(self, value: object) -> object:
        if not isinstance(value, dict) or not value.get("refs"):
            return value
        refs = []
        for ref in value["refs"]:
            if isinstance(ref, dict) and ref.get("type") == "execution" and ref.get("id"):
                status, tail, _ = self.o.follow(str(ref["id"]))
                ref = {"type": "execution", "id": tail if status == "final" else str(ref["id"])}
            refs.append(ref)
        return {**value, "refs": refs}

    def _load(self, attempts: list[str]) -> Reusable:
        """One query: the child steps of these attempts, each step's attempts with their results."""
        table = Reusable()
        rows = self.db.execute(
            select(t.steps.c.id, t.steps.c.module, t.steps.c.target, t.steps.c.arguments, t.executions.c.id.label("ex"),
                   t.executions.c.attempt, t.executions.c.code_hash, t.results.c.kind, t.results.c.value,
                   t.results.c.successor_id)
            .join(t.executions, t.executions.c.step_id == t.steps.c.id)
            .outerjoin(t.results, t.results.c.execution_id == t.executions.c.id)
            .where(and_(t.steps.c.parent_execution_id.in_(attempts), t.steps.c.type == "task"))
            .order_by(t.steps.c.number, t.executions.c.attempt)).all()
        latest: dict[str, object] = {}
        for row in rows:  # ordered by attempt: the last row of a step is its latest attempt
            latest[row.id] = row
        for row in latest.values():
            if row.kind == ResultKind.VALUE:
                reused = row.ex
                # Its waiters (the resumed workflow) read it at once: keep it in memory.
                self.o.cache_result(reused, (row.kind, row.value, None, None))
            elif row.kind is not None and row.successor_id is not None:
                status, tail, result = self.o.follow(row.ex)  # cached, deferred, retried: few
                if status != "final" or result[0] != ResultKind.VALUE:
                    continue
                reused = tail
            else:
                continue
            key = self._call_key(row.module, row.target, row.arguments)
            table.by_key.setdefault(key, []).append((reused, row.code_hash))
        return table

    def forget(self, step_id: str) -> None:
        self.ws.resumed.pop(step_id, None)
