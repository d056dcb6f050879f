"""A run as viewers show it: the server's snapshot, kept current by folding the run's events in.

One fold for every viewer (the notebook widget, `coflux submit`'s progress, Studio's Python
side), so they agree on what a step's status is. The fold is idempotent and order-tolerant:
events may repeat what the snapshot already has (the feed position is read before the snapshot,
see `coflux_server.store.queries.get_run`), and within one attempt a status only moves forward.

Per step it keeps the latest attempt: status (`pending`, `assigned`, `running`, then a result
kind), timing, error text and successor. The run's own status is not derived here: it is the
server's (`outcome`, from the snapshot and `run_result` events).

Layer: a leaf (protocol), under the widgets and the command line.
"""

from __future__ import annotations

from typing import Any

from coflux.protocol import FINAL_RANK, execution_state, status_rank

# Within one attempt a status only moves forward (the order is the protocol's).
FINAL = FINAL_RANK
rank = status_rank


def short_type(error_type: str) -> str:
    return error_type.rsplit(".", 1)[-1] if error_type.startswith("builtins.") else error_type


def error_text(error: dict | None) -> str:
    if not error:
        return ""
    return f"{short_type(str(error.get('type', 'Error')))}: {error.get('message', '')}"


def step_of(execution_id: str) -> tuple[str, int]:
    step_id, _, attempt = execution_id.rpartition(":")
    return step_id, int(attempt or 1)


def execution_status(execution: dict) -> str:
    """An execution's status from a snapshot's entry (the server sends it as `state` too)."""
    result = execution.get("result")
    return execution_state(result["kind"] if result else None, execution.get("started_at"),
                           execution.get("assigned_at"))


# A run's outcome: the fields the server sends in run payloads and `run_result` events.
OUTCOME_FIELDS = ("status", "state", "started_at", "finished_at", "duration", "execution")


class RunView:
    def __init__(self, run_id: str = "") -> None:
        self.run_id = run_id
        self.module = ""
        self.target = ""
        self.seq = 0  # the feed position the view reflects
        self.steps: dict[str, dict] = {}  # step id -> its latest attempt's entry
        self.warnings: list[dict] = []
        # The run's outcome as the server computed it (status, state, started_at, finished_at,
        # duration: server/store/queries.py run_outcomes), and the feed position it is from.
        self.outcome: dict[str, Any] | None = None
        self._outcome_seq = -1

    # ------------------------------------------------------------------ folding

    def load(self, snapshot: dict) -> None:
        """Merge a `get_run` snapshot (the state at its `seq`)."""
        self.run_id = snapshot.get("id", self.run_id)
        self.module = snapshot.get("module", self.module)
        self.target = snapshot.get("target", self.target)
        self.seq = max(self.seq, int(snapshot.get("seq") or 0))
        if "status" in snapshot:
            self.fold_outcome(snapshot, int(snapshot.get("seq") or 0), snapshot=True)
        for step in snapshot.get("steps", []):
            executions = step.get("executions") or []
            if not executions:
                continue
            last = executions[-1]
            result = last.get("result") or {}
            self._merge(step["id"], last["id"], {
                "number": step.get("number"), "module": step.get("module", ""),
                "target": step.get("target", ""), "kind": step.get("type", ""),
                "parent": step.get("parent"), "status": execution_status(last),
                "error": error_text(result.get("error")), "successor": result.get("successor") or "",
                "assigned_at": last.get("assigned_at"), "started_at": last.get("started_at"),
                "finished_at": result.get("at"),
                # Why it makes no progress: for one that a worker holds, a stuck warning.
                "blocked": last.get("waiting") if last.get("assigned_at") and not result else None})

    def apply(self, event: dict) -> bool:
        """Fold one `run:<id>` event in; False when it changes nothing the view shows."""
        if isinstance(event.get("seq"), int):
            self.seq = max(self.seq, event["seq"])
        kind = event.get("type")
        if kind == "warning":
            self.warnings.append(event)
            return True
        if kind == "run_result":
            return self.fold_outcome(event, event.get("seq"))
        execution = event.get("execution")
        if not execution or kind not in ("step", "attempt", "assigned", "started", "result"):
            return False
        step_id = event.get("step") or step_of(execution)[0]
        if kind == "step":
            self._merge(step_id, execution, {
                "number": event.get("number"), "module": event.get("module", ""),
                "target": event.get("target", ""), "kind": event.get("kind", ""),
                "parent": event.get("parent"), "status": "pending"})
        elif kind == "attempt":
            self._merge(step_id, execution, {"status": "pending"})
        elif kind == "assigned":
            self._merge(step_id, execution, {"status": "assigned", "assigned_at": event.get("at")})
        elif kind == "started":
            self._merge(step_id, execution, {"status": "running", "started_at": event.get("at")})
        else:
            self._merge(step_id, execution, {
                "status": event.get("kind", "value"), "error": error_text(event.get("error")),
                "successor": event.get("successor") or "", "finished_at": event.get("at")})
        return True

    def _merge(self, step_id: str, execution: str, fields: dict[str, Any]) -> None:
        attempt = step_of(execution)[1]
        entry = self.steps.get(step_id)
        if entry is None or attempt > entry["attempt"]:
            base = entry or {"step": step_id, "number": int(step_id.rpartition(":")[2] or 0),
                             "module": "", "target": "", "kind": "", "parent": None}
            entry = {**base, "execution": execution, "attempt": attempt, "status": "pending", "error": "",
                     "successor": "", "assigned_at": None, "started_at": None, "finished_at": None}
            self.steps[step_id] = entry
        elif attempt < entry["attempt"]:
            return  # a late event for an attempt that has been superseded
        status = fields.get("status")
        if status is not None and rank(status) < rank(entry["status"]):
            fields = {k: v for k, v in fields.items() if k != "status"}
        for key, value in fields.items():
            if value is not None or key not in entry:
                entry[key] = value

    # ------------------------------------------------------------------ reading

    def ordered_steps(self) -> list[dict]:
        return [dict(s) for s in sorted(self.steps.values(), key=lambda s: s["number"] or 0)]

    def fold_outcome(self, source: dict, seq: Any, snapshot: bool = False) -> bool:
        """Take the run's outcome from a snapshot or a `run_result` event, unless the view has
        one from a later feed position (a snapshot reflects at least its `seq`; an event, its
        own). The server computed it: nothing here derives it from the steps."""
        if isinstance(seq, int) and (seq < self._outcome_seq or (seq == self._outcome_seq and not snapshot)):
            return False
        self.outcome = {key: source.get(key) for key in OUTCOME_FIELDS}
        if isinstance(seq, int):
            self._outcome_seq = seq
        return True

    def status(self) -> str:
        """The run's status as the server defines it (the outcome its root step's latest attempt
        leads to, or `running`); `pending` until the view has heard it."""
        return str(self.outcome.get("status") or "pending") if self.outcome else "pending"

    def warning(self) -> str:
        """What the user should hear about a run that does not move: the latest warning event,
        else a step the snapshot says is stuck."""
        if self.warnings:
            return str(self.warnings[-1].get("message", ""))
        for entry in self.steps.values():
            if entry.get("blocked") and rank(entry["status"]) < FINAL:
                return str(entry["blocked"])
        return ""

    def counts(self) -> dict[str, int]:
        """How many steps are in each status (the latest attempt of each)."""
        counts: dict[str, int] = {}
        for entry in self.steps.values():
            status = "running" if entry["status"] == "assigned" else entry["status"]
            counts[status] = counts.get(status, 0) + 1
        return counts
