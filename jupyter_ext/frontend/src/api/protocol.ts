// Generated from coflux/protocol.py by scripts/gen_protocol.py: do not edit by hand.
// CI fails when this file differs from what the script writes.

export const Op = {
  REGISTER: "register",
  DECLARE: "declare",
  RELEASE: "release",
  SUBMIT: "submit",
  CALL: "call",
  GROUP: "group",
  RESULT: "result",
  WAIT: "wait",
  DEPEND: "depend",
  CANCEL: "cancel",
  RERUN: "rerun",
  SLOTS: "slots",
  STARTED: "started",
  DRAIN: "drain",
  SELECT: "select",
  TELEMETRY: "telemetry",
  PUT_ASSET: "put_asset",
  PROMPT: "prompt",
  RESPOND: "respond",
  DISMISS: "dismiss",
} as const;
export type Op = (typeof Op)[keyof typeof Op];

export const LoopOp = {
  SUBSCRIBE: "subscribe",
  UNSUBSCRIBE: "unsubscribe",
  GET_RUN: "get_run",
  GET_LOGS: "get_logs",
  GET_METRICS: "get_metrics",
  LIST_RUNS: "list_runs",
  WORKSPACES: "workspaces",
  CREATE_WORKSPACE: "create_workspace",
  UPDATE_WORKSPACE: "update_workspace",
  PING: "ping",
} as const;
export type LoopOp = (typeof LoopOp)[keyof typeof LoopOp];

export const Push = {
  EXECUTE: "execute",
  ABORT: "abort",
  RESOLVED: "resolved",
  REPLACED: "replaced",
  EVENTS: "events",
  ERROR: "error",
} as const;
export type Push = (typeof Push)[keyof typeof Push];

export const ResultKind = {
  VALUE: "value",
  ERROR: "error",
  ABANDONED: "abandoned",
  CRASHED: "crashed",
  TIMEOUT: "timeout",
  CANCELLED: "cancelled",
  SUSPENDED: "suspended",
  DEFERRED: "deferred",
  CACHED: "cached",
  SPAWNED: "spawned",
  RECURRED: "recurred",
} as const;
export type ResultKind = (typeof ResultKind)[keyof typeof ResultKind];

export const ExecutionState = {
  PENDING: "pending",
  ASSIGNED: "assigned",
  RUNNING: "running",
} as const;
export type ExecutionState = (typeof ExecutionState)[keyof typeof ExecutionState];

export const RunState = {
  RUNNING: "running",
  SUCCEEDED: "succeeded",
  FAILED: "failed",
  CANCELLED: "cancelled",
} as const;
export type RunState = (typeof RunState)[keyof typeof RunState];

export const InputState = {
  PENDING: "pending",
  RESPONDED: "responded",
  DISMISSED: "dismissed",
  CANCELLED: "cancelled",
} as const;
export type InputState = (typeof InputState)[keyof typeof InputState];

export const HOLDABLE_OPS: ReadonlySet<string> = new Set(["depend", "group", "started"]);
export const FINAL_KINDS: ReadonlySet<string> = new Set(["abandoned", "cancelled", "crashed", "error", "timeout", "value"]);
export const FAILURE_KINDS: ReadonlySet<string> = new Set(["abandoned", "crashed", "error", "timeout"]);
export const WORKER_RESULT_KINDS: ReadonlySet<string> = new Set(["abandoned", "crashed", "error", "suspended", "timeout", "value"]);
export const RUN_EVENT_TYPES: ReadonlySet<string> = new Set(["asset", "assigned", "attempt", "child_run", "dependency", "group", "input", "logs", "memo", "metrics", "rerun", "result", "run_result", "started", "step", "warning"]);

export const STATUS_RANK: Readonly<Record<string, number>> = { "pending": 0, "assigned": 1, "running": 2 };
export const RUN_STATE_OF: Readonly<Record<string, string>> = { "pending": "running", "assigned": "running", "running": "running", "suspended": "running", "value": "succeeded", "cancelled": "cancelled" };
export const FINAL_RANK = 3;
export const MAX_SECONDS = 315576000.0;
export const MAX_MESSAGE_BYTES = 33554432;
export const MAX_REQUEST_KEY = 64;
export const MAX_IDEMPOTENCY_KEY = 200;
export const MAX_VALUE_DEPTH = 256;
export const RUNS_TOPIC = "runs";
export const WORKERS_TOPIC = "workers";
export const STUCK_REASON = "blocked on a result while holding a slot";

export interface ErrorSummary {
  type: string;
  message: string;
}

export interface LogLine {
  id: number;
  execution_id: string;
  level: string;
  template: string | null;
  fields: Record<string, unknown> | null;
  at: number;
}

export interface RunOutcome {
  status: string;
  state: string;
  started_at: number;
  finished_at: number | null;
  duration: number | null;
  execution: string | null;
}

export interface StepEvent {
  type: "step";
  step: string;
  number: number;
  execution: string;
  parent: string | null;
  module: string;
  target: string;
  kind: string;
  created_at: number;
  execute_after: number | null;
  group: number | null;
}

export interface AttemptEvent {
  type: "attempt";
  step: string;
  execution: string;
  attempt: number;
  cause: string;
  created_at: number;
  execute_after: number | null;
}

export interface RerunEvent {
  type: "rerun";
  step: string;
  execution: string;
  by?: string;
}

export interface AssignedEvent {
  type: "assigned";
  execution: string;
  session: string;
  at: number;
}

export interface StartedEvent {
  type: "started";
  execution: string;
  session: string;
  at: number;
}

export interface ResultEvent {
  type: "result";
  execution: string;
  kind: string;
  at: number;
  successor: string | null;
  error?: ErrorSummary;
}

export interface MemoEvent {
  type: "memo";
  parent: string;
  execution: string;
}

export interface DependencyEvent {
  type: "dependency";
  execution: string;
  dependency: string;
}

export interface GroupEvent {
  type: "group";
  execution: string;
  group: number;
  name: string | null;
}

export interface ChildRunEvent {
  type: "child_run";
  run: string;
  parent: string;
  module: string;
  target: string;
}

export interface WarningEvent {
  type: "warning";
  execution: string;
  at: number;
  message: string;
}

export interface LogsEvent {
  type: "logs";
  execution: string;
  lines: LogLine[];
}

export interface MetricsEvent {
  type: "metrics";
  execution: string;
  definitions: Record<string, unknown>;
  points: unknown[][];
}

export interface AssetEvent {
  type: "asset";
  execution: string;
  asset: string;
  name: string | null;
  count: number;
  size: number;
}

export interface RunEvent {
  type: "run";
  run: string;
  module: string;
  target: string;
  workspace_id: number;
  parent: string | null;
  created_at: number;
}

export interface RunResultEvent {
  status: string;
  state: string;
  started_at: number;
  finished_at: number | null;
  duration: number | null;
  execution: string | null;
  type: "run_result";
  run: string;
  kind: string;
  at: number;
}

export interface SessionEvent {
  type: "session";
  session: string;
  connected?: boolean;
  draining?: boolean;
  ended?: boolean;
}

export interface InputEvent {
  type: "input";
  input: string;
  run: string;
  step: string;
  execution: string;
  state: string;
  title: string | null;
  requires: Record<string, unknown> | null;
  created_at: number;
  by: string | null;
  at: number;
}

export interface WorkspaceEvent {
  type: "workspace";
  name: string;
  state: "active" | "paused" | "archived";
}

export interface PoolEvent {
  type: "pool";
  workspace: string;
  pool: string;
  enabled?: boolean;
  deleted?: boolean;
}

export interface LaunchEvent {
  type: "launch";
  launch: string;
  pool: string;
  state: string;
  error?: string;
  exit_code?: number;
  session?: string;
}

/** Any event of the feed, as pushed: its `type` tells which; `seq` is its feed position. */
export type FeedEvent = (StepEvent | AttemptEvent | RerunEvent | AssignedEvent | StartedEvent | ResultEvent | MemoEvent | DependencyEvent | GroupEvent | ChildRunEvent | WarningEvent | LogsEvent | MetricsEvent | AssetEvent | RunEvent | RunResultEvent | SessionEvent | InputEvent | WorkspaceEvent | PoolEvent | LaunchEvent) & { seq: number };
