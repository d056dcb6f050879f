"""Tables of the orchestration store (SQLAlchemy Core).

Runs, steps and executions use their external ids as primary keys ("Rxxxxxx", "Rxxxxxx:3",
"Rxxxxxx:3:1") so that every API, log line and wire message can name them without a lookup.
"""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", Float, nullable=False),
)

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("base_id", Integer, ForeignKey("workspaces.id"), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("archived_at", Float, nullable=True),
    Column("paused_at", Float, nullable=True),  # v10: paused, nothing new is dispatched in it
)

# A worker connection (headless worker process or notebook kernel); survives reconnects.
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), nullable=False),
    Column("kind", String(20), nullable=False),  # "headless" | "kernel"
    Column("name", String(200), nullable=False),
    Column("provides", JSON, nullable=False),
    Column("accepts", JSON, nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("targets", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    # sha256 of the secret the server gave the session: resuming it requires the secret (v2)
    Column("secret_hash", String(64), nullable=True),
)

# Registered workflows (the manifest Studio lists and `submit` validates against).
workflows = Table(
    "workflows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), nullable=False),
    Column("module", String(300), nullable=False),
    Column("name", String(300), nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("options", JSON, nullable=False),
    Column("instruction", Text, nullable=True),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("workspace_id", "module", "name"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), nullable=False),
    Column("module", String(300), nullable=False),
    Column("target", String(300), nullable=False),
    Column("parent_execution_id", String(60), nullable=True),
    Column("idempotency_key", String(200), nullable=True),
    Column("requires", JSON, nullable=True),
    Column("memo", Boolean, nullable=False, default=False),
    Column("origin_session_id", String(40), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(200), nullable=True),  # who submitted it (a principal's name); v9
    UniqueConstraint("workspace_id", "idempotency_key"),
)
Index("ix_runs_target", runs.c.module, runs.c.target, runs.c.created_at)
Index("ix_runs_parent", runs.c.parent_execution_id)

steps = Table(
    "steps",
    metadata,
    Column("id", String(60), primary_key=True),
    Column("run_id", String(40), ForeignKey("runs.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("parent_execution_id", String(60), nullable=True),
    Column("module", String(300), nullable=False),
    Column("target", String(300), nullable=False),
    Column("type", String(10), nullable=False),  # "workflow" | "task"
    Column("arguments", JSON, nullable=False),  # list of wire values, bound to the signature
    Column("options", JSON, nullable=False),  # the caller's options for this call
    Column("cache_key", String(64), nullable=True),
    Column("memo_key", String(64), nullable=True),
    Column("defer_key", String(64), nullable=True),
    Column("request_key", String(64), nullable=True, unique=True),  # de-duplicates re-sent submits
    Column("created_at", Float, nullable=False),
    UniqueConstraint("run_id", "number"),
)
# Partial: most steps have no cache or memo key, and an index entry for each NULL would be written
# (one more page per commit) only never to be looked up.
Index("ix_steps_cache_key", steps.c.cache_key, sqlite_where=steps.c.cache_key.isnot(None),
      postgresql_where=steps.c.cache_key.isnot(None))
Index("ix_steps_memo_key", steps.c.run_id, steps.c.memo_key, sqlite_where=steps.c.memo_key.isnot(None),
      postgresql_where=steps.c.memo_key.isnot(None))
Index("ix_steps_parent", steps.c.parent_execution_id)

executions = Table(
    "executions",
    metadata,
    Column("id", String(70), primary_key=True),
    Column("step_id", String(60), ForeignKey("steps.id"), nullable=False),
    Column("run_id", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("cause", String(10), nullable=True),  # why this attempt exists: retry|rerun|suspend|recur
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("execute_after", Float, nullable=True),
    Column("session_id", String(40), nullable=True),
    Column("assigned_at", Float, nullable=True),
    Column("started_at", Float, nullable=True),
    # How many times it was handed to a worker. The `execute` message carries the number and the
    # worker echoes it: a `release`, `started` or `result` of an older hand-out is ignored.
    Column("assignment", Integer, nullable=True),
    # A hash of the code this attempt runs (coflux/codehash.py), as its caller or re-runner knew
    # it; NULL when nobody could tell (a stub, the command line). Resume and CODE caches use it.
    Column("code_hash", String(64), nullable=True),
    UniqueConstraint("step_id", "attempt"),
)
Index("ix_executions_run", executions.c.run_id)

# The outcome of an execution. Kinds that hand over to another execution carry successor_id.
results = Table(
    "results",
    metadata,
    Column("execution_id", String(70), primary_key=True),
    Column("kind", String(12), nullable=False),
    Column("value", JSON, nullable=True),
    Column("error", JSON, nullable=True),
    Column("successor_id", String(70), nullable=True),
    Column("created_at", Float, nullable=False),
)
Index("ix_results_successor", results.c.successor_id, sqlite_where=results.c.successor_id.isnot(None),
      postgresql_where=results.c.successor_id.isnot(None))

# Parent -> child edges between executions (memo hits add an edge without a new step).
children = Table(
    "children",
    metadata,
    Column("parent_id", String(70), primary_key=True),
    Column("child_id", String(70), primary_key=True),
    Column("memo", Boolean, primary_key=True, default=False),  # a memo hit is an edge of its own
    Column("group_id", Integer, nullable=True),
    Column("created_at", Float, nullable=False),
)

groups = Table(
    "groups",
    metadata,
    Column("execution_id", String(70), primary_key=True),
    Column("group_id", Integer, primary_key=True),
    Column("name", String(300), nullable=True),
)

# Recorded when an execution waits on another's result (drawn as dependency edges).
dependencies = Table(
    "dependencies",
    metadata,
    Column("execution_id", String(70), primary_key=True),
    Column("dependency_id", String(70), primary_key=True),
    Column("created_at", Float, nullable=False),
)
Index("ix_dependencies_dependency", dependencies.c.dependency_id)

# ---------------------------------------------------------------------------------- observability

# The durable event feed: every change a viewer can show, in the commit of the change. `seq` is
# the cursor a viewer resumes from (`subscribe(topic, after=seq)`).
events = Table(
    "events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("topic", String(100), nullable=False),
    Column("data", JSON, nullable=False),
    Column("at", Float, nullable=False),
)
Index("ix_events_topic_seq", events.c.topic, events.c.seq)

# What running executions report besides results: log lines (structured, and captured output)
# and metric points, one row per batch a worker sent (about 100 entries): a chatty fan-out then
# writes a row per execution, not one per line and point. Lines and points have ids of one
# sequence, assigned by the orchestrator: a batch's id is the id of its first entry, its lines
# are the ids from there (`line_count` of them) and its points the ids after them. So a line's
# id is the `coflux logs` cursor and the search index's rowid, and the batch holding a line or
# point is the one with the greatest id not above it.
telemetry = Table(
    "telemetry",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("run_id", String(40), nullable=False),
    Column("execution_id", String(70), nullable=False),
    Column("batch", Integer, nullable=False),  # the worker's batch number (a re-sent one is written once)
    Column("at", Float, nullable=False),
    Column("line_count", Integer, nullable=False),
    Column("levels", Integer, nullable=False),  # a bit per level among its lines (LEVEL_BITS)
    Column("lines", Text, nullable=True),  # JSON [[level, template, values, at], ...]: values are wire values
    Column("point_count", Integer, nullable=False),
    Column("points", Text, nullable=True),  # JSON [[key, x, value], ...]
    Column("definitions", Text, nullable=True),  # JSON {key: {group, scale}}: the first one of a key counts
    Column("wide_ints", Boolean, nullable=False, default=False, server_default="0"),  # texts with integers beyond 64 bits
)
Index("ix_telemetry_run", telemetry.c.run_id, telemetry.c.id)

LEVEL_BITS = {"debug": 1, "info": 2, "warning": 4, "error": 8, "stdout": 16, "stderr": 32}

# Assets: named collections of files (entries point at blobs by their sha256 key).
assets = Table(
    "assets",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("run_id", String(40), nullable=False),
    Column("execution_id", String(70), nullable=False),
    Column("name", String(300), nullable=True),
    Column("entries", JSON, nullable=False),  # [{path, blob, size, metadata}]
    Column("created_at", Float, nullable=False),
)
Index("ix_assets_run", assets.c.run_id)
Index("ix_assets_execution", assets.c.execution_id)


# ------------------------------------------------------------------------------------ access

# Service tokens (`coflux tokens create`): only the SHA-256 of the token is kept, never the token.
tokens = Table(
    "tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("workspaces", JSON, nullable=True),  # fnmatch patterns; NULL: every workspace
    Column("tags", JSON, nullable=False),  # {key: [values]}: what the holder provides (prompts' requires)
    Column("may_ship_code", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(200), nullable=True),
    Column("revoked_at", Float, nullable=True),
)

# Who did what to a run besides submitting it (runs.created_by): a re-run (subject: the new
# attempt), a cancel (subject: each execution it ended), an input answered (subject: the input).
actions = Table(
    "actions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("run_id", String(40), nullable=False),
    Column("action", String(20), nullable=False),
    Column("subject", String(100), nullable=False),
    Column("by", String(200), nullable=False),
    Column("at", Float, nullable=False),
)
Index("ix_actions_run", actions.c.run_id)

# Inputs: prompts running code raised for a person to answer (`cf.Prompt`). One row per prompt,
# memoised within its run by `key`: a re-run step or a resumed suspension asks again and gets the
# same row (and its answer). Only a pending row changes, once: responded, dismissed or cancelled.
inputs = Table(
    "inputs",
    metadata,
    Column("id", String(60), primary_key=True),  # "<run>:i<n>"
    Column("run_id", String(40), nullable=False),
    Column("step_id", String(60), nullable=False),
    Column("execution_id", String(70), nullable=False),  # the execution that first asked
    Column("key", String(200), nullable=False),
    Column("template", Text, nullable=False),
    Column("placeholders", JSON, nullable=False),  # name -> wire value (as log values)
    Column("schema", JSON, nullable=True),  # JSON Schema of the answer; None: an approval
    Column("title", String(300), nullable=True),
    Column("actions", JSON, nullable=True),  # [respond label, dismiss label]
    Column("requires", JSON, nullable=True),  # tags the responder must have
    Column("initial", JSON, nullable=True),  # the form's initial value
    Column("state", String(12), nullable=False),  # an InputState
    Column("value", JSON, nullable=True),  # the answer (JSON, validated against `schema`)
    Column("by", String(200), nullable=True),  # who answered or dismissed it
    Column("created_at", Float, nullable=False),
    Column("responded_at", Float, nullable=True),
    UniqueConstraint("run_id", "key"),
)
Index("ix_inputs_state", inputs.c.state, inputs.c.created_at)

# Pools (v13): a workspace's recipes for launching workers (docs: `coflux pools`). `config` holds
# the launcher's fields (`directory`, `image`, `env.KEY`, ...), a secret one encrypted
# (server/pools/secrets.py); `modules`, `provides` and `accepts` are the pool's common fields.
pools = Table(
    "pools",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("type", String(20), nullable=False),  # "process" | "docker" | "kubernetes"
    Column("config", JSON, nullable=False),
    Column("modules", JSON, nullable=False),
    Column("provides", JSON, nullable=False),
    Column("accepts", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("workspace_id", "name", name="uq_pools_workspace_name"),
)

# A worker the server launched for a pool, from the decision to its end (v13). `secret_hash` is
# the sha256 of the credential made for this launch only; `handle` says where it runs (a pid, a
# container id, a Job name) so a restarted server finds it again.
launches = Table(
    "launches",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("pool_id", Integer, nullable=False),  # no foreign key: a deleted pool's launches stay on record
    Column("pool_name", String(200), nullable=False),
    Column("workspace_id", Integer, nullable=False),
    Column("type", String(20), nullable=False),
    # launching -> started -> connected -> stopping -> exited | failed | lost
    Column("state", String(20), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("handle", JSON, nullable=True),
    Column("session_id", String(40), nullable=True),
    Column("error", Text, nullable=True),
    Column("log_tail", Text, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("connected_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
)
Index("ix_launches_pool", launches.c.pool_id, launches.c.created_at)
Index("ix_launches_state", launches.c.state)
