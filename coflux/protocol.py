"""The coflux wire protocol, named once: operations, result kinds, states, feed events, limits.

The server, the SDK and the front-end all take their names from here (the front-end through
`jupyter_ext/frontend/src/api/protocol.ts`, generated from this module by
`jupyter_ext/frontend/scripts/gen_protocol.py`; CI fails when that file is stale). It imports
the standard library only, so any layer may import it. `server/protocol.md` has the prose.

Layer: a leaf (the standard library only), shared by the SDK, the server and the front-end.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, TypedDict

# ---------------------------------------------------------------------------------- operations


class Op(StrEnum):
    """Requests that change state: the server's orchestrator thread handles them, in batches."""

    REGISTER = "register"  # a worker (headless or kernel) joins or resumes its session
    DECLARE = "declare"  # a kernel re-declares its targets (a cell was run again)
    RELEASE = "release"  # a worker hands back queued work it cannot start soon
    SUBMIT = "submit"  # a new run of a workflow
    CALL = "call"  # a child step from running code
    GROUP = "group"  # running code opened a `cf.group`
    RESULT = "result"  # an execution ended on its worker
    WAIT = "wait"  # wait for an execution's final result
    DEPEND = "depend"  # running code used another execution's result
    CANCEL = "cancel"
    RERUN = "rerun"
    SLOTS = "slots"  # a worker's parked executions (notification)
    STARTED = "started"  # an execution began on its worker (notification)
    DRAIN = "drain"  # a worker is stopping
    SELECT = "select"  # the first of several executions to resolve
    TELEMETRY = "telemetry"  # log lines and metric points
    PUT_ASSET = "put_asset"
    PROMPT = "prompt"  # running code asks a person for input (memoised per run by its key)
    RESPOND = "respond"  # a person answered an input
    DISMISS = "dismiss"  # a person dismissed an input


class LoopOp(StrEnum):
    """Requests the server answers on its I/O loop (reads, subscriptions, workspace admin)."""

    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    GET_RUN = "get_run"
    GET_LOGS = "get_logs"
    GET_METRICS = "get_metrics"
    LIST_RUNS = "list_runs"
    WORKSPACES = "workspaces"
    CREATE_WORKSPACE = "create_workspace"
    UPDATE_WORKSPACE = "update_workspace"
    PING = "ping"


class Push(StrEnum):
    """Messages the server sends without being asked (`{"op": ...}`)."""

    EXECUTE = "execute"  # to a worker: run this execution
    ABORT = "abort"  # to a worker: stop this execution
    RESOLVED = "resolved"  # to a worker: a child its execution submitted has an outcome
    REPLACED = "replaced"  # to a worker: another connection resumed this session
    EVENTS = "events"  # to a viewer: feed events of topics it subscribed to
    ERROR = "error"  # a frame the server could not read


# Notifications that nobody waits on and that scheduling does not depend on: the orchestrator
# may hold them briefly so that they share a batch (and a commit) with other work.
HOLDABLE_OPS = frozenset({Op.STARTED, Op.DEPEND, Op.GROUP})

# ---------------------------------------------------------------------------------- results


class ResultKind(StrEnum):
    """How an execution (one attempt of a step) ended."""

    VALUE = "value"
    ERROR = "error"
    ABANDONED = "abandoned"  # its worker went away (or gave up while draining)
    CRASHED = "crashed"  # its process died
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    SUSPENDED = "suspended"  # ended on purpose; a new attempt resumes it (successor)
    DEFERRED = "deferred"  # a later equal call runs instead (successor)
    CACHED = "cached"  # an earlier equal call's result is reused (successor)
    SPAWNED = "spawned"  # a workflow called as a task: its run holds the outcome (successor)
    RECURRED = "recurred"  # a recurrent step returned None and runs again (successor)


# Kinds that end a chain of successors when they carry no successor themselves.
FINAL_KINDS = frozenset({ResultKind.VALUE, ResultKind.ERROR, ResultKind.CANCELLED, ResultKind.ABANDONED,
                         ResultKind.CRASHED, ResultKind.TIMEOUT})
# Kinds a retry policy may turn into a new attempt.
FAILURE_KINDS = frozenset({ResultKind.ERROR, ResultKind.ABANDONED, ResultKind.CRASHED, ResultKind.TIMEOUT})
# Kinds a worker may report in a `result` (abandoned: a draining worker gave up on it).
WORKER_RESULT_KINDS = frozenset({ResultKind.VALUE, ResultKind.ERROR, ResultKind.CRASHED, ResultKind.TIMEOUT,
                                 ResultKind.SUSPENDED, ResultKind.ABANDONED})


class ExecutionState(StrEnum):
    """Where an execution without a result is."""

    PENDING = "pending"  # no worker has it yet
    ASSIGNED = "assigned"  # a worker has it and has not said it began
    RUNNING = "running"  # its worker said it began


def execution_state(result_kind: str | None, started_at: float | None, assigned_at: float | None) -> str:
    """An execution's status as every surface shows it: its result kind once it has one,
    else running (its worker said it began), assigned (a worker holds it) or pending."""
    if result_kind is not None:
        return result_kind
    if started_at is not None:
        return ExecutionState.RUNNING
    if assigned_at is not None:
        return ExecutionState.ASSIGNED
    return ExecutionState.PENDING


# Within one attempt a status only moves forward: pending < assigned < running < any result.
STATUS_RANK: dict[str, int] = {ExecutionState.PENDING: 0, ExecutionState.ASSIGNED: 1, ExecutionState.RUNNING: 2}
FINAL_RANK = 3


def status_rank(status: str) -> int:
    """The order of an attempt's statuses, for merging events that arrive out of order."""
    return STATUS_RANK.get(status, FINAL_RANK)


class RunState(StrEnum):
    """A run's state as users filter by it."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# A run's state by its status (the outcome of its root step); any other outcome is a failure.
RUN_STATE_OF: dict[str, str] = {
    ExecutionState.PENDING: RunState.RUNNING, ExecutionState.ASSIGNED: RunState.RUNNING,
    ExecutionState.RUNNING: RunState.RUNNING, ResultKind.SUSPENDED: RunState.RUNNING,
    ResultKind.VALUE: RunState.SUCCEEDED, ResultKind.CANCELLED: RunState.CANCELLED,
}


def run_state(status: str) -> str:
    """A run's state from its status (the final outcome of its root step, or `running`)."""
    return RUN_STATE_OF.get(status, RunState.FAILED)


class InputState(StrEnum):
    """Where a prompt (an input asked of a person) is. Only a pending one may change."""

    PENDING = "pending"
    RESPONDED = "responded"
    DISMISSED = "dismissed"
    CANCELLED = "cancelled"


# ---------------------------------------------------------------------------------- limits

# Ten years: longer delays, timeouts and retry backoffs are surely mistakes, and every timer stays
# far below what a thread wait accepts (threading.TIMEOUT_MAX).
MAX_SECONDS = 10 * 365.25 * 24 * 3600.0
# One WebSocket message, either way (a server frame of many messages is split below it).
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
MAX_REQUEST_KEY = 64  # a child step's request key
MAX_IDEMPOTENCY_KEY = 200  # a run's idempotency key
# A value's data nests at most this deep (a tuple or set counts two, a dict with other keys three).
MAX_VALUE_DEPTH = 256

# ---------------------------------------------------------------------------------- step options

# The scheduling options a step is submitted with (`options` of `submit` and `call`), as
# `coflux.options.parse_options` writes them. A run's `submit` merges its `options` over the
# workflow's registered ones, key by key: a key given as null clears the workflow's option.
# `cf.Cache(version=cf.CODE)` on the wire: the server keys the cache on the step's code hash.
CODE_VERSION = "@code"

OPTION_NAMES = ("wait", "cache", "retries", "recurrent", "defer", "delay", "memo", "requires", "timeout")

# ---------------------------------------------------------------------------------- feed topics

# How the `waiting` reason of a running execution begins when it is blocked on a result while
# holding its slot (its worker may park no more): a viewer that missed the `warning` event warns.
STUCK_REASON = "blocked on a result while holding a slot"

RUNS_TOPIC = "runs"  # a run was created or ended
WORKERS_TOPIC = "workers"  # a worker session joined, left, drained or ended


def run_topic(run_id: str) -> str:
    """The topic of everything that happens inside one run."""
    return f"run:{run_id}"


# ---------------------------------------------------------------------------------- feed events
# Each event a viewer receives, with its fields. The server adds `seq` (the feed position) to
# every event it pushes; events are stored in the feed as pushed, except log lines and metric
# points, which are stored once in their own table and kept in the feed as an id range.


class StepEvent(TypedDict):
    type: Literal["step"]
    step: str
    number: int
    execution: str
    parent: str | None
    module: str
    target: str
    kind: str  # workflow | task
    created_at: float
    execute_after: float | None
    group: int | None


class AttemptEvent(TypedDict):
    type: Literal["attempt"]
    step: str
    execution: str
    attempt: int
    cause: str  # retry | recur | suspend | rerun | ...
    created_at: float
    execute_after: float | None


class _RerunEventBase(TypedDict):
    type: Literal["rerun"]
    step: str
    execution: str


class RerunEvent(_RerunEventBase, total=False):
    by: str  # who asked for it (a principal's name)


class AssignedEvent(TypedDict):
    type: Literal["assigned"]
    execution: str
    session: str
    at: float


class StartedEvent(TypedDict):
    type: Literal["started"]
    execution: str
    session: str
    at: float


class ErrorSummary(TypedDict):
    type: str
    message: str


class _ResultEventBase(TypedDict):
    type: Literal["result"]
    execution: str
    kind: str  # a ResultKind
    at: float
    successor: str | None


class ResultEvent(_ResultEventBase, total=False):
    error: ErrorSummary  # kind "error" only


class MemoEvent(TypedDict):
    type: Literal["memo"]
    parent: str
    execution: str


class DependencyEvent(TypedDict):
    type: Literal["dependency"]
    execution: str
    dependency: str


class GroupEvent(TypedDict):
    type: Literal["group"]
    execution: str
    group: int
    name: str | None


class ChildRunEvent(TypedDict):
    type: Literal["child_run"]
    run: str
    parent: str
    module: str
    target: str


class WarningEvent(TypedDict):
    type: Literal["warning"]
    execution: str
    at: float
    message: str


class LogLine(TypedDict):
    id: int  # also the cursor of `coflux logs` and of the logs route
    execution_id: str
    level: str  # debug | info | warning | error | stdout | stderr
    template: str | None
    fields: dict[str, Any] | None  # name -> wire value
    at: float


class LogsEvent(TypedDict):
    type: Literal["logs"]
    execution: str
    lines: list[LogLine]


class MetricsEvent(TypedDict):
    type: Literal["metrics"]
    execution: str
    definitions: dict[str, Any]  # key -> {group, scale}
    points: list[list[Any]]  # [key, x, y]


class AssetEvent(TypedDict):
    type: Literal["asset"]
    execution: str
    asset: str
    name: str | None
    count: int
    size: int


class RunEvent(TypedDict):
    type: Literal["run"]
    run: str
    module: str
    target: str
    workspace_id: int
    parent: str | None
    created_at: float


class RunOutcome(TypedDict):
    """A run's outcome, defined once on the server (`coflux_server.store.queries.run_outcomes`): the
    latest attempt of its root step, followed to the execution that holds its result. Run
    payloads (`get_run`, `list_runs`) carry these fields, and so does RunResultEvent."""

    status: str  # that result's kind (a ResultKind), or "running" while there is none
    state: str  # a RunState: the status as users filter by it (`run_state`)
    started_at: float  # the run's creation
    finished_at: float | None  # when its outcome was recorded (None while it runs)
    duration: float | None  # finished_at - started_at (None while it runs)
    execution: str | None  # the root step's latest attempt: what waiting on the run waits on


class RunResultEvent(RunOutcome):
    """The run's outcome changed (it ended, or a re-run of its root step made it run again):
    published on RUNS_TOPIC and on the run's own topic."""

    type: Literal["run_result"]
    run: str
    kind: str  # the same as `status` (the name older viewers read)
    at: float  # when it was published


class _SessionEventBase(TypedDict):
    type: Literal["session"]
    session: str


class SessionEvent(_SessionEventBase, total=False):
    connected: bool  # it connected (True) or lost its connection (False)
    draining: bool  # it is stopping: no new work
    ended: bool  # it is gone for good


class InputEvent(TypedDict):
    """A prompt was raised or changed state: published on the run's topic and on RUNS_TOPIC (the
    Lab panel counts pending inputs of every run)."""

    type: Literal["input"]
    input: str
    run: str
    step: str  # the step whose execution asked (a re-run or resumed attempt asks again: same input)
    execution: str  # the execution that first asked
    state: str  # an InputState
    title: str | None
    requires: dict[str, Any] | None
    created_at: float
    by: str | None  # who answered or dismissed it
    at: float  # when it changed


class WorkspaceEvent(TypedDict):
    """A workspace was paused, resumed or archived (published on RUNS_TOPIC)."""

    type: Literal["workspace"]
    name: str
    state: Literal["active", "paused", "archived"]


class _PoolEventBase(TypedDict):
    type: Literal["pool"]
    workspace: str
    pool: str


class PoolEvent(_PoolEventBase, total=False):
    """A pool was created, changed, enabled, disabled or deleted (WORKERS_TOPIC)."""

    enabled: bool
    deleted: bool


class _LaunchEventBase(TypedDict):
    type: Literal["launch"]
    launch: str
    pool: str
    state: str  # launching, started, connected, stopping, exited, failed, lost


class LaunchEvent(_LaunchEventBase, total=False):
    """A launched worker's state changed (WORKERS_TOPIC)."""

    error: str
    exit_code: int
    session: str


Event = (StepEvent | AttemptEvent | RerunEvent | AssignedEvent | StartedEvent | ResultEvent | MemoEvent
         | DependencyEvent | GroupEvent | ChildRunEvent | WarningEvent | LogsEvent | MetricsEvent | AssetEvent
         | RunEvent | RunResultEvent | SessionEvent | InputEvent | WorkspaceEvent | PoolEvent | LaunchEvent)

# Every event type, by the value of its `type` field (a test checks each against its class).
EVENT_TYPES: dict[str, type] = {
    "step": StepEvent, "attempt": AttemptEvent, "rerun": RerunEvent, "assigned": AssignedEvent,
    "started": StartedEvent, "result": ResultEvent, "memo": MemoEvent, "dependency": DependencyEvent,
    "group": GroupEvent, "child_run": ChildRunEvent, "warning": WarningEvent, "logs": LogsEvent,
    "metrics": MetricsEvent, "asset": AssetEvent, "run": RunEvent, "run_result": RunResultEvent,
    "session": SessionEvent, "input": InputEvent, "workspace": WorkspaceEvent, "pool": PoolEvent,
    "launch": LaunchEvent,
}
# Event types published on a run's topic (`run_topic`); `run`, `run_result` and `input` go to RUNS_TOPIC
# (`run_result` to the run's topic as well), `session`, `pool` and `launch` to WORKERS_TOPIC,
# `workspace` to RUNS_TOPIC.
RUN_EVENT_TYPES = frozenset(EVENT_TYPES) - {"run", "session", "workspace", "pool", "launch"}
