// Wire shapes of the coflux server's HTTP API and event feed, as the server sends them.
// One definition for Studio, the notebook view and the Lab panel (server/protocol.md has the prose).
import type { RunOutcome } from "./protocol";

/** A serialised value: `{"v": data}` plus `refs` (execution ids) when it references executions.
 * Inside `v`, plain JSON passes through; other types are objects with a `"$"` key:
 * float (non-finite), dict (items), tuple/set/frozenset (items), ref (i: index into refs),
 * datetime/date/time/timedelta/decimal/uuid (v), bytes/pickle (b64, class), blob (format, key, size),
 * asset (an asset reference), asset_entry. */
export interface WireValue {
  v: unknown;
  refs?: WireRef[];
}
/** A reference an encoded value holds: an execution id, or an object with fields the server added. */
export type WireRef = string | { execution?: string; id?: string; [key: string]: unknown };

export interface ErrorInfo {
  type: string; // "builtins.RuntimeError", "module.QualName"
  message: string;
  /** file, line, function, source line, and how Jupyter names a notebook cell's line ("Cell In[8], line 3") */
  frames?: [string, number, string, string | null, string?][];
  retryable?: boolean | null;
}

/** What an attempt ended with. `successor` points at the execution that holds the real outcome
 * for cached, deferred, spawned, recurred, suspended (and retried) results. */
export interface ResultInfo {
  kind: string; // value | error | abandoned | crashed | timeout | cancelled | suspended | deferred | cached | spawned | recurred
  value: WireValue | null;
  error: ErrorInfo | null;
  successor: string | null;
  at: number; // epoch seconds
  by?: string | null; // who cancelled it (a principal's name)
}

export interface ExecutionInfo {
  id: string; // "<run>:<step number>:<attempt>"
  attempt: number;
  cause: string | null; // retry | recur | suspend | rerun | resume | ... (why this attempt exists)
  created_at: number;
  execute_after: number | null;
  assigned_at: number | null;
  started_at: number | null;
  session: string | null;
  worker: string | null;
  state: string; // pending | assigned | running | <result kind>
  by?: string | null; // who re-ran the step into this attempt (a principal's name)
  result: ResultInfo | null;
  waiting?: string; // why it has not started (or why a running one is stuck)
  code_hash?: string | null; // the code it ran (snapshots only; live attempts learn it on the next one)
  reused_from?: number | null; // resumed: the earlier attempt of its parent's step whose value it took
}

export interface StepInfo {
  id: string; // "<run>:<n>"
  number: number;
  module: string;
  target: string;
  type: "workflow" | "task" | string;
  parent: string | null; // the execution that submitted it
  created_at: number;
  arguments: WireValue[];
  /** the target's parameter names (the arguments' names), when a worker has declared them */
  parameters?: string[];
  options: Record<string, unknown>;
  cache_key: string | null;
  memo_key: string | null;
  stale: boolean;
  executions: ExecutionInfo[];
}

/** A run's outcome fields (status, state, started_at, finished_at, duration, execution): computed
 * once, by the server (server/store/queries.py run_outcomes); views show them as they come. */
export type { RunOutcome };

export interface RunSnapshot extends RunOutcome {
  id: string;
  workspace: string;
  module: string;
  target: string;
  parent: string | null; // parent execution (a child run)
  created_at: number;
  requires: Record<string, unknown> | null;
  memo: boolean;
  by?: string | null; // who submitted it: a token's name, the Jupyter user, "super token"
  seq: number; // feed position the snapshot reflects
  steps: StepInfo[];
  children: { parent: string; child: string; group: number | null; memo: boolean }[];
  dependencies: { execution: string; dependency: string }[];
  groups: { execution: string; group: number; name: string | null }[];
  child_runs: { id: string; parent: string; module: string; target: string }[];
  /** prompts the run raised (cf.Prompt): their state and who answered (older servers: absent) */
  inputs?: InputSummary[];
}

/** A prompt of a run as its snapshot and `input` feed events carry it. */
export interface InputSummary {
  id: string;
  step: string;
  execution: string;
  state: string; // an InputState
  title: string | null;
  requires: Record<string, unknown> | null;
  created_at: number;
  by: string | null;
  responded_at?: number | null;
  at?: number;
}

/** A prompt in full (`GET api/inputs/<id>`), with whether this user may answer it. */
export interface InputDetail extends InputSummary {
  run: string;
  key: string;
  template: string;
  placeholders: Record<string, WireValue>;
  schema: Record<string, unknown> | null;
  actions: [string, string] | null;
  initial: unknown;
  value: unknown;
  may_respond: boolean;
}

export interface RunSummary extends RunOutcome {
  id: string;
  module: string;
  target: string;
  created_at: number;
  parent: string | null;
  workspace: string;
}

export interface LogLine {
  id: number;
  execution_id: string;
  level: "debug" | "info" | "warning" | "error" | "stdout" | "stderr" | string;
  template: string | null;
  fields: Record<string, WireValue> | null;
  at: number;
}

export interface MetricGroupInfo { name: string; units: string | null; lower: number | null; upper: number | null }
export interface MetricScaleInfo { name: string; units: string | null; progress: boolean; lower: number | null; upper: number | null }
export interface MetricSeries {
  execution_id: string;
  key: string;
  group: MetricGroupInfo | null;
  scale: MetricScaleInfo | null;
  points: [number, number][]; // [x, y]
}

export interface AssetEntryInfo { path: string; blob_key: string; size: number; metadata: Record<string, unknown> }
export interface AssetInfo {
  id: string;
  run_id?: string;
  execution_id: string;
  name: string | null;
  entries: AssetEntryInfo[];
  created_at?: number;
}

export interface Parameter {
  name: string; annotation?: string | null; default?: WireValue | null; kind?: string;
  /** the JSON Schema of the parameter's type hint (pydantic's), when it has one the server checks */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON Schema is open-ended
  schema?: { [key: string]: any } | null;
}
export interface WorkflowInfo {
  module: string;
  name: string;
  parameters: Parameter[];
  options: Record<string, unknown>;
  instruction: string | null; // the docstring
  updated_at: number;
  /** a connected worker hosts it now (absent: an older server, taken as hosted) */
  hosted?: boolean;
  /** when none does: when the last worker that hosted it left (epoch seconds), if known */
  host_left_at?: number | null;
}

export interface WorkerInfo {
  id: string;
  name: string;
  kind: string; // headless | kernel
  connected: boolean;
  concurrency: number;
  running: string[];
  provides: Record<string, unknown>;
  accepts: Record<string, unknown>;
  targets: string[];
}

export interface Workspace { id?: number; name: string; base: string | null }

/** One event of the feed, a union discriminated by `type` (generated from coflux/protocol.py).
 * Topic `run:<id>`: RUN_EVENT_TYPES. Topic `runs`: run, run_result. Topic `workers`: session. */
export type { FeedEvent } from "./protocol";
