// Folding a run's snapshot and feed events into steps: the same rules as coflux/runview.py.
// Idempotent and order-tolerant: an event may repeat what the snapshot has, or arrive before
// the step it belongs to; within one attempt a status only moves forward; a step's status is
// its latest attempt's, so a later attempt supersedes.
import { ExecutionState, FINAL_RANK, ResultKind, STATUS_RANK } from "../api/protocol";
import type {
  ErrorInfo, ExecutionInfo, FeedEvent, InputSummary, ResultInfo, RunOutcome, RunSnapshot, StepInfo,
} from "../api/types";
import { foldOutcome, type HeldOutcome } from "./outcome";

export const FINAL = FINAL_RANK;
/** Within one attempt a status only moves forward (the protocol's order). */
export const rank = (state: string): number => STATUS_RANK[state] ?? FINAL_RANK;

export function stepOf(executionId: string): { step: string; attempt: number } {
  const i = executionId.lastIndexOf(":");
  return { step: executionId.slice(0, i), attempt: Number(executionId.slice(i + 1)) || 1 };
}

export function stepNumber(stepId: string): number {
  return Number(stepId.slice(stepId.lastIndexOf(":") + 1)) || 0;
}

/** A step as folded: the stored fields plus its attempts by id. */
export interface StepRecord {
  info: Omit<StepInfo, "executions">;
  executions: Map<string, ExecutionInfo>;
  detailed: boolean; // arguments and options are known (from a snapshot)
}

function placeholderStep(stepId: string): StepRecord {
  return {
    info: {
      id: stepId, number: stepNumber(stepId), module: "", target: "", type: "task", parent: null,
      created_at: 0, arguments: [], options: {}, cache_key: null, memo_key: null, stale: false,
    },
    executions: new Map(),
    detailed: false,
  };
}

function placeholderExecution(executionId: string): ExecutionInfo {
  return {
    id: executionId, attempt: stepOf(executionId).attempt, cause: null, created_at: 0, execute_after: null,
    assigned_at: null, started_at: null, session: null, worker: null, state: "pending", result: null,
  };
}

/** What a fold step changed, so the store knows what to recompute and tell. */
export interface Change {
  steps: Set<string>; // steps whose model changed
  structure: boolean; // nodes or edges were added (views re-layout)
  details: boolean; // something only a snapshot has is now missing (arguments, a result's value)
}

export const noChange = (): Change => ({ steps: new Set(), structure: false, details: false });

export interface Edge { parent: string; child: string; group: number | null; memo: boolean }

/** The run's steps and edges, folded. */
export class RunFold {
  readonly steps = new Map<string, StepRecord>();
  readonly children = new Map<string, Edge>(); // by child execution (+ memo flag)
  readonly dependencies = new Map<string, { execution: string; dependency: string }>();
  readonly groups = new Map<string, { execution: string; group: number; name: string | null }>();
  readonly childRuns = new Map<string, RunSnapshot["child_runs"][number]>();
  /** the same edges indexed by the step they lead into (a step model reads only its own) */
  readonly edgesInto = new Map<string, Edge[]>();
  readonly dependenciesOf = new Map<string, string[]>(); // step -> executions it waited on
  /** prompts raised by the run (cf.Prompt), by input id: a later state wins (only pending changes) */
  readonly inputs = new Map<string, InputSummary>();
  warning = "";
  /** the run's outcome as the server computed it (store/outcome.ts), with its feed position */
  held: HeldOutcome | null = null;

  constructor(readonly runId: string) {}

  private step(stepId: string, change: Change): StepRecord {
    let record = this.steps.get(stepId);
    if (!record) {
      record = placeholderStep(stepId);
      this.steps.set(stepId, record);
      change.structure = true;
      change.details = true;
    }
    change.steps.add(stepId);
    return record;
  }

  private execution(executionId: string, change: Change): ExecutionInfo {
    const record = this.step(stepOf(executionId).step, change);
    let execution = record.executions.get(executionId);
    if (!execution) {
      execution = placeholderExecution(executionId);
      record.executions.set(executionId, execution);
      change.structure = true;
    }
    return execution;
  }

  private executionCause(executionId: string): string | null | undefined {
    return this.steps.get(stepOf(executionId).step)?.executions.get(executionId)?.cause;
  }

  /** Merge fields into an execution: non-null values win, the state only moves forward. */
  private mergeExecution(executionId: string, fields: Partial<ExecutionInfo>, change: Change): void {
    const current = this.execution(executionId, change);
    const next: ExecutionInfo = { ...current };
    const out = next as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(fields)) {
      if (key === "state" || key === "result" || key === "waiting" || value === undefined) continue;
      if (value !== null || out[key] === undefined) out[key] = value;
    }
    if (fields.result) {
      // An event's result has no value; a snapshot's has: keep whichever fields are known.
      const known = current.result;
      next.result = known ? {
        ...known, ...fields.result, value: fields.result.value ?? known.value,
        error: fields.result.error?.frames ? fields.result.error : known.error ?? fields.result.error,
        successor: fields.result.successor ?? known.successor,
      } : fields.result;
    }
    if (fields.state !== undefined && rank(fields.state) > rank(current.state)) next.state = fields.state;
    if ("waiting" in fields) {
      if (fields.waiting == null) delete next.waiting;
      else next.waiting = fields.waiting;
    }
    if (rank(next.state) === FINAL) delete next.waiting;
    this.steps.get(stepOf(executionId).step)!.executions.set(executionId, next);
  }

  private addEdge(edge: Edge, change: Change): void {
    const key = `${edge.parent}>${edge.child}${edge.memo ? ":memo" : ""}`;
    const current = this.children.get(key);
    if (current && (current.group === edge.group || edge.group === null)) return;
    const stored = { ...edge, group: edge.group ?? current?.group ?? null };
    this.children.set(key, stored);
    const into = stepOf(edge.child).step;
    const list = (this.edgesInto.get(into) ?? []).filter((e) => e !== current);
    list.push(stored);
    this.edgesInto.set(into, list);
    change.structure = true;
    change.steps.add(stepOf(edge.child).step);
    if (this.steps.has(stepOf(edge.parent).step)) change.steps.add(stepOf(edge.parent).step);
  }

  // ------------------------------------------------------------------ snapshot

  load(snapshot: RunSnapshot): Change {
    const change = noChange();
    this.held = foldOutcome(this.held, snapshot, snapshot.seq, "snapshot");
    for (const step of snapshot.steps ?? []) {
      const record = this.step(step.id, change);
      const { executions, ...info } = step;
      const wasDetailed = record.detailed;
      record.info = { ...record.info, ...info };
      record.detailed = true;
      if (!wasDetailed) change.structure = true; // module/target/parent now known
      for (const execution of executions ?? []) {
        // `waiting` always set: a snapshot without it says the execution no longer waits.
        this.mergeExecution(execution.id, { ...execution, waiting: execution.waiting }, change);
      }
    }
    for (const edge of snapshot.children ?? []) this.addEdge(edge, change);
    for (const d of snapshot.dependencies ?? []) this.addDependency(d.execution, d.dependency, change);
    for (const g of snapshot.groups ?? []) this.addGroup(g.execution, g.group, g.name, change);
    for (const r of snapshot.child_runs ?? []) this.addChildRun(r, change);
    for (const i of snapshot.inputs ?? []) this.addInput(i, change);
    change.details = false;
    return change;
  }

  private addDependency(execution: string, dependency: string, change: Change): void {
    const key = `${execution}<${dependency}`;
    if (this.dependencies.has(key)) return;
    this.dependencies.set(key, { execution, dependency });
    const step = stepOf(execution).step;
    const list = this.dependenciesOf.get(step);
    if (list) list.push(dependency);
    else this.dependenciesOf.set(step, [dependency]);
    change.structure = true;
    change.steps.add(stepOf(execution).step);
  }

  private addGroup(execution: string, group: number, name: string | null, change: Change): void {
    const key = `${execution}#${group}`;
    const current = this.groups.get(key);
    if (current && (current.name === name || name === null)) return;
    this.groups.set(key, { execution, group, name: name ?? current?.name ?? null });
    change.structure = true;
    for (const edge of this.children.values()) {
      if (edge.parent === execution && edge.group === group) change.steps.add(stepOf(edge.child).step);
    }
  }

  private addChildRun(run: RunSnapshot["child_runs"][number], change: Change): void {
    if (this.childRuns.has(run.id)) return;
    this.childRuns.set(run.id, run);
    change.structure = true;
    if (run.parent) change.steps.add(stepOf(run.parent).step);
  }

  private addInput(input: InputSummary, change: Change): void {
    const known = this.inputs.get(input.id);
    if (known && known.state !== "pending" && input.state === "pending") return; // an older event
    this.inputs.set(input.id, { ...known, ...input });
    change.steps.add(input.step);
  }

  // ------------------------------------------------------------------ events

  apply(event: FeedEvent, change: Change): void {
    switch (event.type) {
      case "step": {
        const execution = event.execution;
        const record = this.step(event.step || stepOf(execution).step, change);
        if (!record.detailed) {
          record.info = {
            ...record.info, number: event.number ?? record.info.number, module: event.module ?? "",
            target: event.target ?? "", type: event.kind ?? "task", parent: event.parent ?? null,
            created_at: event.created_at ?? 0,
          };
          change.structure = true;
        }
        this.mergeExecution(execution, {
          attempt: stepOf(execution).attempt, created_at: event.created_at ?? 0,
          execute_after: event.execute_after ?? null, state: ExecutionState.PENDING,
        }, change);
        if (typeof event.parent === "string") {
          this.addEdge({ parent: event.parent, child: execution, group: event.group ?? null, memo: false }, change);
        }
        return;
      }
      case "attempt":
        this.mergeExecution(event.execution, {
          attempt: event.attempt ?? stepOf(event.execution).attempt, cause: event.cause,
          created_at: event.created_at ?? undefined, execute_after: event.execute_after ?? null,
          state: ExecutionState.PENDING,
        }, change);
        return;
      case "rerun":
        // The attempt event before it says the cause (a resume is a re-run too); keep it.
        this.mergeExecution(event.execution, {
          attempt: stepOf(event.execution).attempt, state: ExecutionState.PENDING,
          ...(this.executionCause(event.execution) ? {} : { cause: "rerun" }),
          ...(event.by ? { by: event.by } : {}),
        }, change);
        return;
      case "assigned":
        // Why it waited is answered now (a stuck warning for a held one comes as its own event).
        this.mergeExecution(event.execution, { assigned_at: event.at ?? null, session: event.session ?? null,
          state: ExecutionState.ASSIGNED, waiting: undefined }, change);
        return;
      case "started":
        this.mergeExecution(event.execution, { started_at: event.at ?? null, session: event.session ?? null,
          state: ExecutionState.RUNNING, waiting: undefined }, change);
        return;
      case "result": {
        const execution = event.execution;
        const kind = event.kind ?? ResultKind.VALUE;
        const result: ResultInfo = {
          kind, value: null, error: (event.error as ErrorInfo | undefined) ?? null,
          successor: event.successor ?? null, at: event.at ?? 0,
        };
        const known = this.steps.get(stepOf(execution).step)?.executions.get(execution)?.result;
        this.mergeExecution(execution, { result, state: kind }, change);
        if (!known && (kind === ResultKind.VALUE || kind === ResultKind.ERROR)) change.details = true; // value, frames
        if (result.successor && this.steps.has(stepOf(result.successor).step)) change.structure = true;
        return;
      }
      case "memo":
        this.addEdge({ parent: event.parent, child: event.execution, group: null, memo: true }, change);
        return;
      case "dependency":
        this.addDependency(event.execution, event.dependency, change);
        return;
      case "group":
        if (typeof event.group === "number") this.addGroup(event.execution, event.group, event.name ?? null, change);
        return;
      case "input":
        this.addInput({
          id: event.input, step: event.step, execution: event.execution, state: event.state, title: event.title,
          requires: event.requires, created_at: event.created_at, by: event.by, at: event.at,
          responded_at: event.state === "pending" ? null : event.at,
        }, change);
        break;
      case "child_run":
        this.addChildRun({ id: event.run, parent: event.parent ?? "", module: event.module ?? "",
          target: event.target ?? "" }, change);
        return;
      case "run_result":
        this.held = foldOutcome(this.held, event, event.seq, "event");
        return;
      case "warning":
        this.warning = event.message ?? "";
        change.steps.add(stepOf(event.execution).step);
        return;
      default:
        return;
    }
  }

  // ------------------------------------------------------------------ reading

  /** The run's status: its first step's outcome, following successors within the run. */
  /** The run's outcome as the server computed it (never derived from the steps here). */
  outcome(): RunOutcome | null {
    return this.held?.outcome ?? null;
  }

  /** The run's status: the server's (its root step's latest attempt, followed to its result, or
   * `running`); `pending` until the view has heard it. */
  status(): string {
    return this.held?.outcome.status ?? ExecutionState.PENDING;
  }
}

export function latestOf(record: StepRecord): ExecutionInfo | undefined {
  let latest: ExecutionInfo | undefined;
  for (const execution of record.executions.values()) {
    if (!latest || execution.attempt > latest.attempt) latest = execution;
  }
  return latest;
}
