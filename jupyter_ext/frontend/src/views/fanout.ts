// Large runs made readable: siblings that call the same target collapse into one fan-out node,
// and the queries a user runs over many steps (search, status filter, next failure, sorting a
// fan-out's members). Pure (no DOM, no preact), so it is unit-tested on its own and shared by
// Studio, the Lab tab and the notebook view through graph.tsx.
import type { WireValue } from "../api/types";
import type { StepModel } from "../store/types";
import { stepOfExecution } from "./format";
import { type GraphEdge, type GraphNode, type RunGraph, edgeRank } from "./graphmodel";
import { statusLook } from "./status";

/** Fewer siblings than this stay as separate nodes: a handful of boxes reads fine. */
export const FANOUT_MIN = 8;

export function fanOutId(parentStep: string, module: string, target: string): string {
  return `fanout:${parentStep}:${module}.${target}`;
}

/** Replace every run of >= FANOUT_MIN sibling steps (same parent step, same target) by one
 * "fanout" node whose members are the steps in call order; `expanded` fan-outs stay drawn step
 * by step. The children of a collapsed fan-out's members count as siblings too (300 `process`
 * calls that each call `load` are two fan-outs, not one and 300 nodes). Edges are re-pointed at
 * the fan-out (one per pair, the strongest meaning kept). */
export function collapseFanOuts(graph: RunGraph, expanded: ReadonlySet<string> = new Set()): RunGraph {
  const { nodeOf, fans } = fanOutsOf(graph.nodes.filter((n) => n.kind === "step" && n.step).map((n) => n.step!), expanded);
  if (fans.size === 0) return graph;

  const nodes: GraphNode[] = [];
  for (const node of graph.nodes) {
    const fan = nodeOf.get(node.id);
    if (fan === undefined) nodes.push(node);
    else if (fans.get(fan)!.members![0].id === node.id) nodes.push(fans.get(fan)!); // at its first member's place
  }
  const edges = new Map<string, GraphEdge>();
  for (const edge of graph.edges) {
    const from = nodeOf.get(edge.from) ?? edge.from;
    const to = nodeOf.get(edge.to) ?? edge.to;
    if (from === to) continue;
    const id = `${from}>${to}`;
    const existing = edges.get(id);
    if (existing && edgeRank(existing.kind) >= edgeRank(edge.kind)) continue;
    edges.set(id, { ...edge, id, from, to });
  }
  const nodeOfStep = new Map<string, string>();
  for (const [step, node] of graph.nodeOfStep) nodeOfStep.set(step, nodeOf.get(node) ?? node);
  const edgeList = [...edges.values()];
  // The layout's key leaves out how many members a fan-out has: a growing fan-out is recoloured
  // and relabelled, never laid out again.
  const structureKey = nodes.map((n) => n.id + (n.kind === "group" ? `*${n.members!.length}` : "")).join("|") +
    "#" + edgeList.map((e) => `${e.id}:${e.kind}`).join("|");
  return { ...graph, nodes, edges: edgeList, nodeOfStep, structureKey };
}

/** Which steps fall into which fan-out, level by level from the root (see collapseFanOuts). */
export function fanOutsOf(steps: readonly StepModel[], expanded: ReadonlySet<string> = new Set()): {
  nodeOf: Map<string, string>; fans: Map<string, GraphNode>;
} {
  const byId = new Map(steps.map((s) => [s.id, s]));
  // Level by level from the root, so a parent's fan-out is known before its children are keyed.
  const depth = new Map<string, number>();
  const depthOf = (s: StepModel): number => {
    // Up the parent chain (iteratively: a recursive workflow may nest thousands deep).
    const chain: StepModel[] = [];
    const seen = new Set<string>();
    let at: StepModel | undefined = s;
    while (at && !depth.has(at.id) && !seen.has(at.id)) {
      chain.push(at);
      seen.add(at.id);
      at = at.parent ? byId.get(stepOfExecution(at.parent)) : undefined;
    }
    let d = at && depth.has(at.id) ? depth.get(at.id)! : -1;
    for (let i = chain.length - 1; i >= 0; i--) depth.set(chain[i].id, ++d);
    return depth.get(s.id)!;
  };
  const levels: StepModel[][] = [];
  for (const s of steps) (levels[depthOf(s)] ??= []).push(s);
  const nodeOf = new Map<string, string>(); // step id -> fan-out id
  const fans = new Map<string, GraphNode>();
  for (const level of levels) {
    if (!level) continue;
    const families = new Map<string, StepModel[]>();
    for (const step of level) {
      if (!step.parent) continue;
      const parent = stepOfExecution(step.parent);
      const id = fanOutId(nodeOf.get(parent) ?? parent, step.module, step.target);
      let members = families.get(id);
      if (!members) families.set(id, (members = []));
      members.push(step);
    }
    for (const [id, members] of families) {
      if (members.length < FANOUT_MIN || expanded.has(id)) continue;
      members.sort((a, b) => a.number - b.number);
      fans.set(id, { id, kind: "fanout", label: `${members[0].target} x${members.length}`, members });
      for (const m of members) nodeOf.set(m.id, id);
    }
  }
  return { nodeOf, fans };
}

// ---------------------------------------------------------------- statuses

export type StatusClass = "failed" | "running" | "pending" | "ok" | "other";
export const STATUS_CLASSES: StatusClass[] = ["failed", "running", "pending", "ok", "other"];

export function statusClass(status: string): StatusClass {
  switch (statusLook(status).tone) {
    case "bad": return "failed";
    case "run": return "running";
    case "wait": return "pending";
    case "ok": return "ok";
    default: return "other"; // cancelled, abandoned, cached, deferred, ...
  }
}

export type Counts = Record<StatusClass, number>;

export function countStatuses(steps: readonly StepModel[]): Counts {
  const counts: Counts = { failed: 0, running: 0, pending: 0, ok: 0, other: 0 };
  for (const s of steps) counts[statusClass(s.status)] += 1;
  return counts;
}

/** "297 ok, 3 failed, 0 running" (+ pending / other when there are any). */
export function countsText(counts: Counts): string {
  const parts = [`${counts.ok} ok`, `${counts.failed} failed`, `${counts.running} running`];
  if (counts.pending) parts.push(`${counts.pending} waiting`);
  if (counts.other) parts.push(`${counts.other} other`);
  return parts.join(", ");
}

/** The fan-out's own status: failed if any failed, else running, waiting, ok. */
export function fanStatus(counts: Counts, members: readonly StepModel[]): string {
  const order: StatusClass[] = ["failed", "running", "pending", "other", "ok"];
  for (const cls of order) {
    if (counts[cls]) return members.find((m) => statusClass(m.status) === cls)?.status ?? "value";
  }
  return "value";
}

// ---------------------------------------------------------------- arguments

const SHORT = 18;

function clip(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max - 1) + "…";
}

/** A short list of plain items as written ("[1, 2]", "(5,)"), else its size ("[40 items]"). */
function shortItems(items: unknown, open: string, close: string, max: number): string {
  const list = Array.isArray(items) ? items : [];
  const plain = list.every((x) => x === null || ["number", "string", "boolean"].includes(typeof x));
  if (plain) {
    const text = list.map((x) => (typeof x === "string" ? JSON.stringify(x) : x === null ? "None" : String(x))).join(", ");
    const single = open === "(" && list.length === 1 ? "," : "";
    if (text.length + 2 <= max) return `${open}${text}${single}${close}`;
  }
  return `${open}${list.length} item${list.length === 1 ? "" : "s"}${close}`;
}

/** One argument as a few characters: numbers and strings as they are, containers by size. */
export function shortValue(value: WireValue | undefined, max = SHORT): string {
  if (!value) return "";
  const v = value.v;
  if (v === null) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return clip(JSON.stringify(v), max);
  if (Array.isArray(v)) return shortItems(v, "[", "]", max);
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    switch (o.$) {
      case undefined: return `{${Object.keys(o).length} keys}`;
      case "ref": {
        const ref = value.refs?.[Number(o.i)];
        const id = typeof ref === "string" ? ref : String(ref?.id ?? ref?.execution ?? "");
        return id ? `↪#${id.split(":")[1] ?? id}` : "↪";
      }
      case "tuple": return shortItems(o.items, "(", ")", max);
      case "dict": return `{${Array.isArray(o.items) ? o.items.length : 0} keys}`;
      case "asset": return `asset ${String(o.name ?? "")}`.trim();
      default: return clip(o.v !== undefined ? String(o.v) : String(o.$), max);
    }
  }
  return clip(String(v), max);
}

/** How a step is named: its target with its first argument's short form, "scale(17)". */
export function callLabel(step: StepModel): string {
  if (!step.arguments.length) return `${step.target}()`;
  return `${step.target}(${shortValue(step.arguments[0])}${step.arguments.length > 1 ? ", …" : ""})`;
}

const argsTextCache = new WeakMap<object, string>();

/** All arguments as one line of short forms (the member list's column, and what search sees). */
export function argumentsText(step: StepModel): string {
  const key = step.arguments as object;
  let text = argsTextCache.get(key);
  if (text === undefined) {
    text = step.arguments.map((a) => shortValue(a, 40)).join(", ");
    argsTextCache.set(key, text);
  }
  return text;
}

// ---------------------------------------------------------------- search, filter, failures

export interface StepQuery {
  text: string; // matched against the target, "#number" and the arguments (case-insensitive)
  status: StatusClass | "";
}

export function queryActive(q: StepQuery): boolean {
  return q.text.trim() !== "" || q.status !== "";
}

export function stepMatches(step: StepModel, q: StepQuery): boolean {
  if (q.status && statusClass(step.status) !== q.status) return false;
  const text = q.text.trim().toLowerCase();
  if (!text) return true;
  return `${step.target} #${step.number} ${argumentsText(step)}`.toLowerCase().includes(text);
}

/** The failed step after (dir 1) or before (dir -1) `current` in call order, wrapping around. */
export function nextFailure(steps: readonly StepModel[], current: string | null, dir: 1 | -1): StepModel | undefined {
  const failed = steps.filter((s) => statusClass(s.status) === "failed").sort((a, b) => a.number - b.number);
  if (!failed.length) return undefined;
  const at = current ? Number(current.split(":")[1]) : dir === 1 ? -Infinity : Infinity;
  if (dir === 1) return failed.find((s) => s.number > at) ?? failed[0];
  for (let i = failed.length - 1; i >= 0; i--) if (failed[i].number < at) return failed[i];
  return failed[failed.length - 1];
}

// ---------------------------------------------------------------- member list

export type SortKey = "item" | "arguments" | "status" | "duration" | "attempts";

/** How long a step's latest attempt ran (to `now` while it runs); null before it started. */
export function stepDuration(step: StepModel, now: number): number | null {
  const e = step.latest;
  if (e.started_at == null) return null;
  return Math.max(0, (e.result?.at ?? now) - e.started_at);
}

const STATUS_ORDER: Record<StatusClass, number> = { failed: 0, running: 1, pending: 2, other: 3, ok: 4 };

export function sortMembers(members: readonly StepModel[], key: SortKey, descending: boolean, now: number): StepModel[] {
  const value = (s: StepModel): number | string => {
    switch (key) {
      case "item": return s.number;
      case "arguments": return argumentsText(s);
      case "status": return STATUS_ORDER[statusClass(s.status)];
      case "duration": return stepDuration(s, now) ?? -1;
      case "attempts": return s.executions.length;
    }
  };
  const sign = descending ? -1 : 1;
  return [...members].sort((a, b) => {
    const x = value(a);
    const y = value(b);
    const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
    return c !== 0 ? sign * c : a.number - b.number;
  });
}

// ---------------------------------------------------------------- step pickers (the log filter)

export interface StepChoice { id: string; label: string; members: StepModel[] }

/** Steps to pick from, large families folded: a fan-out (>= FANOUT_MIN calls of one target by one
 * parent) is one choice "scale x300 (all)" instead of 300; other steps are their own choice. In
 * call order of each choice's first step. */
export function stepChoices(steps: readonly StepModel[]): StepChoice[] {
  const { nodeOf, fans } = fanOutsOf(steps);
  const out: StepChoice[] = [];
  const seen = new Set<string>();
  for (const step of [...steps].sort((a, b) => a.number - b.number)) {
    const fan = nodeOf.get(step.id);
    if (fan === undefined) {
      out.push({ id: step.id, label: `${step.target} #${step.number}`, members: [step] });
    } else if (!seen.has(fan)) {
      seen.add(fan);
      const members = fans.get(fan)!.members!;
      out.push({ id: fan, label: `${step.target} x${members.length} (all)`, members });
    }
  }
  return out;
}
