// A live run: the snapshot and the feed folded into a RunModel (store/types.ts), plus the run's
// logs, metrics and assets, loaded over HTTP and then kept current by the same feed.
//
// One model per run and client: a second openRun of the same run shares it (each handle has its
// own listeners and dispose), so Studio, a Lab tab and a widget of one run cost one subscription.
import type { MetricsEvent } from "../api/protocol";
import type { FeedEvent, LogLine, MetricSeries, RunSnapshot, AssetInfo, ExecutionInfo, InputSummary } from "../api/types";
import type { Feed } from "../api/feed";
import type { CofluxApi, RunModel, StepModel } from "./types";
import { RunFold, latestOf, noChange, stepOf, type Change, type StepRecord } from "./fold";

const LOG_PAGE = 10_000; // the server's largest page (server/store/observe.py MAX_LINES)

type Scheduler = (callback: () => void) => void;
const nextFrame: Scheduler = typeof requestAnimationFrame === "function"
  ? (callback) => { requestAnimationFrame(() => callback()); }
  : (callback) => { setTimeout(callback, 16); };

interface ServerAsset {
  id: string;
  run?: string;
  run_id?: string;
  execution?: string;
  execution_id?: string;
  name: string | null;
  entries?: { path: string; blob?: string; blob_key?: string; size: number; metadata?: Record<string, unknown> }[];
  created_at?: number;
  [key: string]: unknown;
}

/** The server's asset shape, with the field names of api/types.ts AssetInfo as well. */
export function normaliseAsset(asset: ServerAsset): AssetInfo {
  return {
    ...asset,
    id: asset.id,
    run_id: asset.run_id ?? asset.run,
    execution_id: asset.execution_id ?? asset.execution ?? "",
    name: asset.name ?? null,
    entries: (asset.entries ?? []).map((e) => ({
      ...e, path: e.path, blob_key: e.blob_key ?? e.blob ?? "", size: e.size, metadata: e.metadata ?? {},
    })),
    created_at: asset.created_at,
  };
}

class RunCore {
  readonly fold: RunFold;
  snapshot: RunSnapshot | null = null;
  version = 0;
  structureVersion = 0;
  error = "";
  private readonly handles = new Set<() => void>();
  private readonly models = new Map<string, StepModel>();
  private ordered: StepModel[] | null = null;
  private dirty = new Set<string>();
  private scheduled = false;
  private unsubscribe: (() => void) | null = null;
  private unconnection: (() => void) | null = null;
  private synced = false;
  /** When the view last lost (or, never having had it, started waiting for) the server's
   * feed, in epoch seconds; null while in sync. */
  lostAt: number | null = Date.now() / 1000;

  // logs: in id order, deduplicated
  private logList: LogLine[] = [];
  private logIds = new Set<number>();
  private logsUnsorted = false;
  // metrics: loaded at `metricsSeq`; events up to it are in the load, later ones are appended
  private series = new Map<string, MetricSeries>();
  private seriesList: MetricSeries[] | null = null;
  private metricsSeq: number | null = null;
  private heldMetrics: (MetricsEvent & { seq: number })[] = [];
  private assetMap = new Map<string, AssetInfo>();
  private assetList: AssetInfo[] | null = null;

  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private refreshing = false;
  private disposed = false;
  private loadsStarted = false;

  constructor(readonly api: CofluxApi, readonly feed: Feed, readonly runId: string,
    private readonly onEmpty: () => void) {
    this.fold = new RunFold(runId);
    this.unsubscribe = feed.subscribe(`run:${runId}`, {
      onSnapshot: (snapshot) => {
        this.loadSnapshot(snapshot as RunSnapshot);
        this.startLoads();
      },
      onEvent: (event) => this.applyEvent(event),
      onSynced: () => {
        this.synced = true;
        this.lostAt = null;
        this.changed(noChange());
      },
      onError: (error) => {
        this.error = error.message || error.code;
        this.changed(noChange());
        this.startLoads();
      },
    });
    this.unconnection = feed.onConnection((connected) => {
      if (!connected) {
        if (this.synced) this.lostAt = Date.now() / 1000;
        this.synced = false;
      }
      this.changed(noChange());
    });
  }

  /** Logs, metrics and assets are read over HTTP only once the snapshot is here: the feed drops
   * events at or below the snapshot's seq, so a read made before it could miss what was written
   * between the two. Read after it, what the read lacks comes as live events (ids dedupe). */
  private startLoads(): void {
    if (this.loadsStarted) return;
    this.loadsStarted = true;
    void this.loadLogs();
    void this.loadMetrics();
    void this.loadAssets();
  }

  get connected(): boolean {
    return this.feed.connected && this.synced;
  }

  // ------------------------------------------------------------------ handles

  addHandle(notify: () => void): void {
    this.handles.add(notify);
  }

  removeHandle(notify: () => void): void {
    this.handles.delete(notify);
    if (this.handles.size === 0) this.dispose();
  }

  private dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.unsubscribe?.();
    this.unconnection?.();
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.onEmpty();
  }

  // ------------------------------------------------------------------ folding

  private loadSnapshot(snapshot: RunSnapshot): void {
    if (!snapshot || typeof snapshot !== "object" || !Array.isArray(snapshot.steps)) return;
    this.snapshot = snapshot;
    this.error = "";
    this.changed(this.fold.load(snapshot));
  }

  private applyEvent(event: FeedEvent): void {
    const change = noChange();
    switch (event.type) {
      case "logs":
        this.addLogs((event.lines as LogLine[] | undefined) ?? []);
        break;
      case "metrics":
        if (this.metricsSeq === null) this.heldMetrics.push(event);
        else if (event.seq > this.metricsSeq) this.addMetrics(event);
        break;
      case "asset":
        void this.loadAsset(event.asset ?? "");
        break;
      default:
        this.fold.apply(event, change);
    }
    this.changed(change);
  }

  private changed(change: Change): void {
    for (const step of change.steps) {
      this.dirty.add(step);
    }
    if (change.structure) this.structureVersion += 1;
    if (change.details) this.scheduleRefresh();
    this.version += 1;
    if (this.scheduled || this.disposed) return;
    this.scheduled = true;
    nextFrame(() => {
      this.scheduled = false;
      if (this.disposed) return;
      for (const notify of [...this.handles]) {
        try {
          notify();
        } catch (error) {
          console.error("coflux: a run view listener failed", error);
        }
      }
    });
  }

  /** The snapshot again, after events that lack details (arguments, values, tracebacks):
   * at most one request in flight, spaced more widely for big runs. */
  private scheduleRefresh(): void {
    if (this.refreshTimer || this.disposed) return;
    const delay = 100 + Math.min(5000, this.fold.steps.size * 2);
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      if (this.refreshing) {
        this.scheduleRefresh();
        return;
      }
      this.refreshing = true;
      this.api.get<RunSnapshot>(`api/runs/${this.runId}`).then(
        (snapshot) => { this.refreshing = false; if (!this.disposed) this.loadSnapshot(snapshot); },
        () => { this.refreshing = false; },
      );
    }, delay);
  }

  // ------------------------------------------------------------------ logs, metrics, assets

  private async loadLogs(): Promise<void> {
    let after = 0;
    try {
      for (;;) {
        const page = await this.api.get<{ lines: LogLine[]; last: number; more: boolean }>(
          `api/runs/${this.runId}/logs`, { after, limit: LOG_PAGE });
        if (this.disposed) return;
        this.addLogs(page.lines ?? []);
        this.changed(noChange());
        if (!page.more || page.last <= after) return;
        after = page.last;
      }
    } catch (error) {
      console.warn(`coflux: logs of ${this.runId} could not be loaded`, error);
    }
  }

  private addLogs(lines: LogLine[]): void {
    for (const line of lines) {
      if (typeof line?.id !== "number" || this.logIds.has(line.id)) continue;
      this.logIds.add(line.id);
      const last = this.logList[this.logList.length - 1];
      if (last && line.id < last.id) this.logsUnsorted = true;
      this.logList.push(line);
    }
  }

  logs(): readonly LogLine[] {
    if (this.logsUnsorted) {
      this.logList = [...this.logList].sort((a, b) => a.id - b.id);
      this.logsUnsorted = false;
    }
    return this.logList;
  }

  private async loadMetrics(): Promise<void> {
    try {
      const loaded = await this.api.get<{ series: MetricSeries[]; seq: number }>(`api/runs/${this.runId}/metrics`);
      if (this.disposed) return;
      for (const s of loaded.series ?? []) {
        this.series.set(`${s.execution_id}\u0000${s.key}`, { ...s, points: [...(s.points ?? [])] });
      }
      this.metricsSeq = loaded.seq ?? 0;
    } catch (error) {
      console.warn(`coflux: metrics of ${this.runId} could not be loaded`, error);
      this.metricsSeq = 0;
    }
    const held = this.heldMetrics;
    this.heldMetrics = [];
    for (const event of held) if (event.seq > (this.metricsSeq ?? 0)) this.addMetrics(event);
    this.seriesList = null;
    this.changed(noChange());
  }

  private addMetrics(event: MetricsEvent): void {
    const execution = event.execution ?? "";
    const definitions = (event.definitions ?? {}) as Record<string, { group: MetricSeries["group"]; scale: MetricSeries["scale"] }>;
    const entry = (key: string): MetricSeries => {
      const id = `${execution}\u0000${key}`;
      let series = this.series.get(id);
      if (!series) {
        series = { execution_id: execution, key, group: null, scale: null, points: [] };
        this.series.set(id, series);
        this.seriesList = null;
      }
      return series;
    };
    for (const [key, definition] of Object.entries(definitions)) {
      const series = entry(key);
      const updated = { ...series, group: definition?.group ?? series.group, scale: definition?.scale ?? series.scale };
      this.series.set(`${execution}\u0000${key}`, updated);
      this.seriesList = null;
    }
    for (const point of (event.points ?? []) as [string, number, number][]) {
      if (!Array.isArray(point) || point.length !== 3) continue;
      const series = entry(point[0]);
      series.points.push([point[1], point[2]]);
    }
    this.seriesList = null;
  }

  metrics(): readonly MetricSeries[] {
    if (!this.seriesList) this.seriesList = [...this.series.values()];
    return this.seriesList;
  }

  private async loadAssets(): Promise<void> {
    try {
      const loaded = await this.api.get<{ assets: ServerAsset[] }>(`api/runs/${this.runId}/assets`);
      if (this.disposed) return;
      for (const asset of loaded.assets ?? []) this.assetMap.set(asset.id, normaliseAsset(asset));
      this.assetList = null;
      this.changed(noChange());
    } catch (error) {
      console.warn(`coflux: assets of ${this.runId} could not be loaded`, error);
    }
  }

  private async loadAsset(assetId: string): Promise<void> {
    if (!assetId || this.assetMap.has(assetId)) return;
    try {
      const asset = await this.api.get<ServerAsset>(`api/assets/${assetId}`);
      if (this.disposed) return;
      this.assetMap.set(asset.id, normaliseAsset(asset));
      this.assetList = null;
      this.changed(noChange());
    } catch (error) {
      console.warn(`coflux: asset ${assetId} could not be loaded`, error);
    }
  }

  assets(): readonly AssetInfo[] {
    if (!this.assetList) {
      this.assetList = [...this.assetMap.values()].sort((a, b) => (a.created_at ?? 0) - (b.created_at ?? 0));
    }
    return this.assetList;
  }

  // ------------------------------------------------------------------ steps

  private model(record: StepRecord): StepModel {
    const fold = this.fold;
    const executions = [...record.executions.values()].sort((a, b) => a.attempt - b.attempt);
    const latest: ExecutionInfo = latestOf(record) ?? {
      id: `${record.info.id}:1`, attempt: 1, cause: null, created_at: record.info.created_at,
      execute_after: null, assigned_at: null, started_at: null, session: null, worker: null,
      state: "pending", result: null,
    };
    let group: StepModel["group"] = null;
    const memoisedBy: string[] = [];
    for (const edge of fold.edgesInto.get(record.info.id) ?? []) {
      if (edge.memo) {
        memoisedBy.push(edge.parent);
      } else if (edge.group !== null && group === null) {
        const named = fold.groups.get(`${edge.parent}#${edge.group}`);
        group = { id: edge.group, name: named?.name ?? null };
      }
    }
    const dependencies = [...(fold.dependenciesOf.get(record.info.id) ?? [])];
    const inputs = [...fold.inputs.values()].filter((i) => i.step === record.info.id);
    return { ...record.info, executions, status: latest.state, latest, group, dependencies, memoisedBy, inputs };
  }

  private refreshModels(): void {
    if (this.dirty.size === 0 && this.ordered) return;
    for (const stepId of this.dirty) {
      const record = this.fold.steps.get(stepId);
      if (record) this.models.set(stepId, this.model(record));
    }
    // Steps that depend on structure (groups, memo edges) were marked dirty by the fold.
    for (const [stepId, record] of this.fold.steps) {
      if (!this.models.has(stepId)) this.models.set(stepId, this.model(record));
    }
    this.dirty.clear();
    this.ordered = [...this.models.values()].sort((a, b) => a.number - b.number);
  }

  steps(): StepModel[] {
    this.refreshModels();
    return this.ordered!;
  }

  step(stepId: string): StepModel | undefined {
    this.refreshModels();
    return this.models.get(stepId);
  }

  execution(executionId: string): { step: StepModel; execution: ExecutionInfo } | undefined {
    const step = this.step(stepOf(executionId).step);
    const execution = step?.executions.find((e) => e.id === executionId);
    return step && execution ? { step, execution } : undefined;
  }

  childRuns(): RunSnapshot["child_runs"] {
    return [...this.fold.childRuns.values()];
  }

  inputs(): InputSummary[] {
    return [...this.fold.inputs.values()].sort((a, b) => a.created_at - b.created_at);
  }
}

/** The RunModel a view holds: the shared core, with this view's own listeners. */
class RunHandle implements RunModel {
  private listeners = new Set<() => void>();
  private disposed = false;
  private readonly notify = () => {
    for (const listener of [...this.listeners]) listener();
  };

  constructor(private readonly core: RunCore) {
    core.addHandle(this.notify);
  }

  get runId() { return this.core.runId; }
  get snapshot() { return this.core.snapshot; }
  get version() { return this.core.version; }
  get structureVersion() { return this.core.structureVersion; }
  get status() { return this.core.fold.status(); }
  get outcome() { return this.core.fold.outcome(); }
  get connected() { return this.core.connected; }
  get lostAt() { return this.core.connected ? null : this.core.lostAt; }
  get warning() { return this.core.fold.warning || this.stuck(); }
  get waiting() { return this.rootWaiting(); }
  get error() { return this.core.error; }
  steps() { return this.core.steps(); }
  step(stepId: string) { return this.core.step(stepId); }
  execution(executionId: string) { return this.core.execution(executionId); }
  logs() { return this.core.logs(); }
  metrics() { return this.core.metrics(); }
  assets() { return this.core.assets(); }
  childRuns() { return this.core.childRuns(); }
  inputs() { return this.core.inputs(); }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.listeners.clear();
    this.core.removeHandle(this.notify);
  }

  /** Why the run has not started: its root step's reason, while that step has not started. */
  private rootWaiting(): string {
    const root = this.core.steps()[0];
    if (!root || root.status !== "pending") return "";
    return root.latest.waiting ?? "";
  }

  /** A step the server says makes no progress (its `waiting` on a running attempt). */
  private stuck(): string {
    for (const step of this.core.steps()) {
      if (step.latest.waiting && (step.status === "running" || step.status === "assigned")) return step.latest.waiting;
    }
    return "";
  }
}

const cores = new WeakMap<Feed, Map<string, RunCore>>();

export function openRunModel(api: CofluxApi, feed: Feed, runId: string): RunModel {
  let byRun = cores.get(feed);
  if (!byRun) {
    byRun = new Map();
    cores.set(feed, byRun);
  }
  let core = byRun.get(runId);
  if (!core) {
    const map = byRun;
    core = new RunCore(api, feed, runId, () => map.delete(runId));
    byRun.set(runId, core);
  }
  return new RunHandle(core);
}
