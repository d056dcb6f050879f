// The graph of a run as nodes and edges (no layout, no drawing): steps, collapsed cf.group
// members, child runs and other runs that results resolve to. Pure, so the view can tell when the
// node/edge set changed (re-layout) and when only statuses did (recolour).
import type { ExecutionInfo } from "../api/types";
import type { RunModel, StepModel } from "../store/types";
import { runOfId, stepOfExecution } from "./format";
import { severity } from "./status";

export type EdgeKind = "dependency" | "child" | "childrun" | "spawned" | "successor" | "memo";

export interface GraphNode {
  id: string;
  kind: "step" | "group" | "fanout" | "run";
  label: string;
  /** steps: the step; groups and fan-outs (fanout.ts): their members (call order); runs: none */
  step?: StepModel;
  members?: StepModel[];
  runId?: string; // run nodes: the run to open
  detail?: string;
  reusedFrom?: number; // steps of a resumed attempt that took an earlier attempt's value
}

export interface GraphEdge {
  id: string;
  from: string;
  to: string;
  kind: EdgeKind;
  label?: string;
}

/** A step whose children were submitted by more than one of its attempts (a resume, a re-run, a
 * retry): the graph shows one attempt's children at a time. */
export interface AttemptChoice {
  step: StepModel;
  attempts: number[]; // attempts that submitted children, ascending
  shown: number;
}

export interface RunGraph {
  attemptChoices: AttemptChoice[];
  nodes: GraphNode[];
  edges: GraphEdge[];
  nodeOfStep: Map<string, string>;
  /** changes only when the node or edge set does (the layout's memo key) */
  structureKey: string;
}

export function groupNodeId(parentExecution: string, group: number): string {
  return `group:${parentExecution}:${group}`;
}

/** The steps to draw: children of the chosen attempt of each step (default its latest attempt
 * with children), and their descendants; steps are in number order, so parents come first. */
function visibleSteps(all: StepModel[], chosen: ReadonlyMap<string, number>): { steps: StepModel[]; choices: AttemptChoice[] } {
  const byParentStep = new Map<string, Set<number>>();
  for (const step of all) {
    if (!step.parent) continue;
    const parentStep = stepOfExecution(step.parent);
    const attempt = Number(step.parent.slice(step.parent.lastIndexOf(":") + 1));
    let set = byParentStep.get(parentStep);
    if (!set) byParentStep.set(parentStep, set = new Set());
    set.add(attempt);
  }
  const stepById = new Map(all.map((s) => [s.id, s]));
  const choices: AttemptChoice[] = [];
  const shownAttempt = new Map<string, number>();
  for (const [parentStep, set] of byParentStep) {
    if (set.size < 2) continue;
    const attempts = [...set].sort((a, b) => a - b);
    const wanted = chosen.get(parentStep);
    const shown = wanted !== undefined && set.has(wanted) ? wanted : attempts[attempts.length - 1];
    shownAttempt.set(parentStep, shown);
    const step = stepById.get(parentStep);
    if (step) choices.push({ step, attempts, shown });
  }
  if (!choices.length) return { steps: all, choices };
  const hidden = new Set<string>();
  const steps = all.filter((step) => {
    if (!step.parent) return true;
    const parentStep = stepOfExecution(step.parent);
    const shown = shownAttempt.get(parentStep);
    const attempt = Number(step.parent.slice(step.parent.lastIndexOf(":") + 1));
    if (hidden.has(parentStep) || (shown !== undefined && attempt !== shown)) {
      hidden.add(step.id);
      return false;
    }
    return true;
  });
  choices.sort((a, b) => a.step.number - b.step.number);
  return { steps, choices };
}

export function buildGraph(model: RunModel, chosenAttempts: ReadonlyMap<string, number> = new Map()): RunGraph {
  const { steps, choices } = visibleSteps(model.steps(), chosenAttempts);
  const runId = model.runId;
  const nodes: GraphNode[] = [];
  const nodeOfStep = new Map<string, string>();
  const groups = new Map<string, GraphNode>();

  for (const step of steps) {
    if (step.group && step.parent) {
      const id = groupNodeId(step.parent, step.group.id);
      let node = groups.get(id);
      if (!node) {
        node = { id, kind: "group", label: step.group.name || `group ${step.group.id}`, members: [] };
        groups.set(id, node);
        nodes.push(node);
      }
      node.members!.push(step);
      nodeOfStep.set(step.id, id);
    } else {
      nodes.push({ id: step.id, kind: "step", label: step.target, step, reusedFrom: reusedAttempt(model, step) });
      nodeOfStep.set(step.id, step.id);
    }
  }

  const runNodes = new Map<string, GraphNode>();
  const runNode = (id: string, label: string, detail: string): string => {
    const nodeId = `run:${id}`;
    if (!runNodes.has(nodeId)) {
      const node: GraphNode = { id: nodeId, kind: "run", label, runId: id, detail };
      runNodes.set(nodeId, node);
      nodes.push(node);
    }
    return nodeId;
  };
  const childRuns = model.childRuns().filter((r) => runOfId(r.parent) !== runId || nodeOfStep.has(stepOfExecution(r.parent)));
  for (const child of childRuns) {
    runNode(child.id, child.target, `child run ${child.id}`);
  }
  /** The node an execution id belongs to: a step of this run, else another run's node. */
  const nodeOfExecution = (executionId: string, why: string): string | undefined => {
    if (runOfId(executionId) === runId) return nodeOfStep.get(stepOfExecution(executionId));
    return runNode(runOfId(executionId), `run ${runOfId(executionId)}`, `${why} ${executionId}`);
  };

  const edges = new Map<string, GraphEdge>();
  const addEdge = (from: string | undefined, to: string | undefined, kind: EdgeKind, label?: string) => {
    if (!from || !to || from === to) return;
    const id = `${from}>${to}`;
    const existing = edges.get(id);
    // One edge per pair: the strongest meaning wins (a waited-on child is a dependency).
    if (existing && edgeRank(existing.kind) >= edgeRank(kind)) return;
    edges.set(id, { id, from, to, kind, label });
  };

  for (const step of steps) {
    if (step.parent && runOfId(step.parent) === runId) {
      addEdge(nodeOfStep.get(stepOfExecution(step.parent)), nodeOfStep.get(step.id), "child");
    }
  }
  for (const step of steps) {
    const node = nodeOfStep.get(step.id);
    for (const dependency of step.dependencies) {
      const from = nodeOfExecution(dependency, "waited on");
      // Drawn along the parent->child direction when the parent waited on its own child.
      if (from && edges.has(`${node}>${from}`)) addEdge(node, from, "dependency");
      else addEdge(from, node, "dependency");
    }
    for (const parent of step.memoisedBy) {
      if (runOfId(parent) === runId) addEdge(nodeOfStep.get(stepOfExecution(parent)), node, "memo", "memo");
    }
    for (const execution of step.executions) {
      const result = execution.result;
      if (!result?.successor || stepOfExecution(result.successor) === step.id) continue;
      const kind: EdgeKind = result.kind === "spawned" ? "spawned" : "successor";
      addEdge(node, nodeOfExecution(result.successor, result.kind), kind, result.kind);
    }
  }
  const resolvedTo = new Set([...edges.values()].filter((e) => e.kind === "spawned").map((e) => e.to));
  for (const child of childRuns) {
    // A spawned step already links to its run; otherwise the run hangs off its parent.
    if (runOfId(child.parent) === runId && !resolvedTo.has(`run:${child.id}`)) {
      addEdge(nodeOfStep.get(stepOfExecution(child.parent)), `run:${child.id}`, "childrun");
    }
  }

  const edgeList = [...edges.values()];
  const structureKey = nodes.map((n) => n.id + (n.members ? `*${n.members.length}` : "")).join("|") +
    "#" + edgeList.map((e) => `${e.id}:${e.kind}`).join("|");
  return { attemptChoices: choices, nodes, edges: edgeList, nodeOfStep, structureKey };
}

/** The earlier attempt (of its parent's step) whose value a resumed call took: the attempt
 * (default the latest) is `cached` from a child of another attempt of the same parent step. */
export function reusedAttempt(model: RunModel, step: StepModel, execution: ExecutionInfo = step.latest): number | undefined {
  if (execution.reused_from) return execution.reused_from;
  const successor = execution.result?.kind === "cached" ? execution.result.successor : null;
  if (!successor || !step.parent || runOfId(successor) !== model.runId) return undefined;
  const other = model.execution(successor)?.step.parent;
  if (!other || other === step.parent || stepOfExecution(other) !== stepOfExecution(step.parent)) return undefined;
  return Number(other.slice(other.lastIndexOf(":") + 1));
}

/** Which meaning wins when two edges join the same pair of nodes. */
export function edgeRank(kind: EdgeKind): number {
  return { child: 0, memo: 1, successor: 2, spawned: 3, childrun: 3, dependency: 4 }[kind];
}

/** A group's status: its worst member's, and counts per status for the label. */
export function groupStatus(members: StepModel[]): { status: string; counts: Map<string, number> } {
  const counts = new Map<string, number>();
  let worst = "value";
  for (const m of members) {
    counts.set(m.status, (counts.get(m.status) ?? 0) + 1);
    if (severity(m.status) > severity(worst)) worst = m.status;
  }
  return { status: worst, counts };
}
