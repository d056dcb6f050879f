// The contract between data (api/, store/) and the views (views/). Views never fetch on their own:
// they read a RunModel and subscribe to its changes, and call actions through CofluxApi.
import type {
  AssetInfo, ExecutionInfo, InputSummary, LogLine, MetricSeries, RunOutcome, RunSnapshot, StepInfo,
} from "../api/types";

/** A step as views show it: the stored step with its attempts, kept current by the feed. */
export interface StepModel extends StepInfo {
  /** status of the latest attempt: pending | assigned | running | <result kind> */
  status: string;
  latest: ExecutionInfo;
  group: { id: number; name: string | null } | null;
  /** executions whose results this step's executions waited on (dependency edges) */
  dependencies: string[];
  /** a step marked memoised: a later call was answered by one of its executions */
  memoisedBy: string[];
  /** prompts this step raised (cf.Prompt), oldest first; a pending one: "waiting for input" */
  inputs: InputSummary[];
}

/** A run folded from its snapshot and feed events; mutable, replaced in place, versioned. */
export interface RunModel {
  readonly runId: string;
  readonly snapshot: RunSnapshot | null; // what was loaded first (run-level fields)
  readonly version: number; // +1 on every change a view may show
  readonly status: string; // the run's status as the server computed it (outcome.status; "pending" before)
  /** the run's outcome as the server computed it (status, state, started_at, finished_at, duration) */
  readonly outcome: RunOutcome | null;
  readonly connected: boolean; // false while the feed is down (views say so)
  /** since when (epoch seconds) the view has had no contact with the server; null when connected */
  readonly lostAt?: number | null;
  /** why the run has not started (its root step's waiting reason), else "" */
  readonly waiting?: string;
  readonly warning: string; // latest warning event text, else ""
  /** +1 when steps or edges are added (a view re-lays out only then; `version` covers the rest) */
  readonly structureVersion?: number;
  /** why the run cannot be shown (e.g. "no run 'R…'"), else "" */
  readonly error?: string;
  steps(): StepModel[]; // ordered by step number
  step(stepId: string): StepModel | undefined;
  execution(executionId: string): { step: StepModel; execution: ExecutionInfo } | undefined;
  logs(): readonly LogLine[]; // in id order, deduplicated
  metrics(): readonly MetricSeries[]; // one series per (execution, key), points appended live
  assets(): readonly AssetInfo[];
  childRuns(): RunSnapshot["child_runs"];
  /** prompts the run raised, oldest first */
  inputs(): InputSummary[];
  /** Subscribe to changes (called at most once per animation frame); returns the unsubscribe. */
  onChange(listener: () => void): () => void;
  dispose(): void;
}

/** The one client of the server's API. `base` is the server's root URL ("/" headless,
 * "{base_url}coflux/" in Jupyter); auth is the browser's cookie (Studio, Lab, same-origin widget)
 * or a token (a widget whose kernel uses another server). */
export interface CofluxApi {
  readonly base: string;
  /** the token when the api authenticates with one (loadPlotly adds it as ?token=), else "" */
  readonly token?: string;
  /** the live feed is up (Studio's shell shows it; a RunModel has its own `connected`) */
  readonly connected?: boolean;
  onConnection?(listener: (connected: boolean) => void): () => void;
  get<T>(path: string, query?: Record<string, string | number | undefined>): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
  /** A live model of a run: snapshot, then events; resumes after reconnects with no gap. */
  openRun(runId: string): RunModel;
  /** Live topics "runs" and "workers": the callback gets every event (after resubscribes too). */
  subscribe(topic: "runs" | "workers", onEvent: (event: unknown) => void): () => void;
  blobUrl(key: string): string; // GET api/blobs/<key> with auth
  cancel(executionId: string): Promise<unknown>;
  rerun(stepId: string, workspace?: string): Promise<{ execution: string }>;
  /** Resume a failed step: a new attempt whose calls an earlier attempt completed are reused. */
  resume(stepId: string): Promise<{ execution: string }>;
  /** POST api/runs with plain JSON arguments (the server wraps them); replies with the run id. */
  submit(module: string, target: string, args: unknown[], kwargs?: Record<string, unknown>,
    workspace?: string): Promise<{ run: string; [key: string]: unknown }>;
}
