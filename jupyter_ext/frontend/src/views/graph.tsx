// The run graph: dagre layout drawn in SVG, with pan (drag), zoom (wheel) and fit. The layout is
// memoised on the graph's structure key: status changes only recolour the nodes. Siblings calling
// the same target are one fan-out node (fanout.ts); a toolbar searches, filters by status and
// steps through failures; an opened fan-out or group lists its members (memberlist.tsx).
import dagre from "@dagrejs/dagre";
import type { JSX } from "preact";
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import type { StepModel } from "../store/types";
import { useModelVersion, useView } from "./context";
import {
  callLabel, collapseFanOuts, countStatuses, countsText, fanStatus, nextFailure, queryActive, STATUS_CLASSES,
  stepMatches, type Counts, type StatusClass, type StepQuery,
} from "./fanout";
import { buildGraph, groupStatus, type GraphEdge, type GraphNode, type RunGraph } from "./graphmodel";
import { MemberList } from "./memberlist";
import { isActive, statusLook } from "./status";

const NODE_W = 190;
const NODE_H = 46;
const FANOUT_W = 240;
const FANOUT_H = 56;
const MAX_LABEL = 24;
const LABEL_MIN_SCALE = 0.3;

interface Placed { x: number; y: number; w: number; h: number }
interface Fan { id: string; parent: string; count: number; box: Placed; edge: { x: number; y: number }[]; kind: string }
interface Layout {
  nodes: Map<string, Placed>;
  edges: Map<string, { x: number; y: number }[]>;
  fans: Fan[];
  width: number;
  height: number;
  ms: number;
}

// Many leaves under one parent (a fan-out of tasks) go into a grid that dagre places as one
// block: a 1,000-step fan-out lays out fast and fits the screen, instead of a 60,000 px column.
const FAN_MIN = 24;
const GAP_X = 14;
const GAP_Y = 10;
const FAN_PAD = 12;

function findFans(graph: RunGraph): Map<string, string[]> {
  const degree = new Map<string, number>();
  const parentOf = new Map<string, string>();
  for (const e of graph.edges) {
    degree.set(e.from, (degree.get(e.from) ?? 0) + 1);
    degree.set(e.to, (degree.get(e.to) ?? 0) + 1);
    parentOf.set(e.to, e.from);
  }
  const fans = new Map<string, string[]>();
  for (const node of graph.nodes) {
    const parent = parentOf.get(node.id);
    if (parent === undefined || degree.get(node.id) !== 1) continue;
    let list = fans.get(parent);
    if (!list) fans.set(parent, (list = []));
    list.push(node.id);
  }
  for (const [parent, leaves] of fans) if (leaves.length < FAN_MIN) fans.delete(parent);
  return fans;
}

function layoutGraph(graph: RunGraph): Layout {
  const started = performance.now();
  const fans = findFans(graph);
  const inFan = new Map<string, string>();
  const grids = new Map<string, { cols: number; rows: number; w: number; h: number }>();
  for (const [parent, leaves] of fans) {
    const cols = Math.max(1, Math.ceil(Math.sqrt(leaves.length / 3)));
    const rows = Math.ceil(leaves.length / cols);
    grids.set(parent, { cols, rows, w: cols * (NODE_W + GAP_X) - GAP_X + 2 * FAN_PAD,
      h: rows * (NODE_H + GAP_Y) - GAP_Y + 2 * FAN_PAD + 14 });
    for (const leaf of leaves) inFan.set(leaf, parent);
  }
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: "LR", nodesep: 14, ranksep: 70, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of graph.nodes) {
    if (inFan.has(node.id)) continue;
    if (node.kind === "fanout") g.setNode(node.id, { width: FANOUT_W, height: FANOUT_H });
    else g.setNode(node.id, { width: NODE_W, height: NODE_H });
  }
  for (const [parent, grid] of grids) {
    g.setNode(`fan:${parent}`, { width: grid.w, height: grid.h });
    g.setEdge(parent, `fan:${parent}`, { weight: 2 });
  }
  for (const edge of graph.edges) {
    if (inFan.has(edge.to) || inFan.has(edge.from)) continue;
    // Submission edges shape the layout most; the others follow it.
    g.setEdge(edge.from, edge.to, { weight: edge.kind === "child" || edge.kind === "dependency" ? 2 : 1 });
  }
  dagre.layout(g);
  const nodes = new Map<string, Placed>();
  for (const id of g.nodes()) {
    const n = g.node(id);
    if (n && !id.startsWith("fan:")) nodes.set(id, { x: n.x, y: n.y, w: n.width, h: n.height });
  }
  const fanList: Fan[] = [];
  for (const [parent, leaves] of fans) {
    const n = g.node(`fan:${parent}`);
    const grid = grids.get(parent)!;
    const left = n.x - grid.w / 2 + FAN_PAD;
    const top = n.y - grid.h / 2 + FAN_PAD + 14;
    leaves.forEach((leaf, i) => {
      const col = Math.floor(i / grid.rows);
      const row = i % grid.rows;
      nodes.set(leaf, { x: left + col * (NODE_W + GAP_X) + NODE_W / 2, y: top + row * (NODE_H + GAP_Y) + NODE_H / 2, w: NODE_W, h: NODE_H });
    });
    const e = g.edge(parent, `fan:${parent}`) as { points?: { x: number; y: number }[] } | undefined;
    // The block's one edge stands for its leaves' edges: "waited on" when the parent waited on most.
    const leafSet = new Set(leaves);
    const waited = graph.edges.filter((edge) => leafSet.has(edge.to) && edge.kind === "dependency").length;
    fanList.push({ id: `fan:${parent}`, parent, count: leaves.length,
      box: { x: n.x, y: n.y, w: grid.w, h: grid.h }, edge: e?.points ?? [],
      kind: waited * 2 >= leaves.length ? "dependency" : "child" });
  }
  const moved = siblingsInCallOrder(graph, nodes, inFan);
  const edges = new Map<string, { x: number; y: number }[]>();
  for (const edge of graph.edges) {
    const from = nodes.get(edge.from);
    const to = nodes.get(edge.to);
    if ((moved.has(edge.from) || moved.has(edge.to)) && from && to && !inFan.has(edge.to) && !inFan.has(edge.from)) {
      edges.set(edge.id, curveBetween(from, to));
      continue;
    }
    const e = g.hasEdge(edge.from, edge.to) ? g.edge(edge.from, edge.to) as { points?: { x: number; y: number }[] } : undefined;
    if (e?.points) edges.set(edge.id, e.points);
  }
  const info = g.graph() as { width?: number; height?: number };
  return { nodes, edges, fans: fanList, width: info.width ?? 0, height: info.height ?? 0, ms: performance.now() - started };
}

/** dagre orders a rank to cut crossings, not by call order: the children of one parent that share
 * a rank take their places again top to bottom in call order (graph.nodes is in step order).
 * Returns the nodes that moved (their edges are redrawn). */
function siblingsInCallOrder(graph: RunGraph, nodes: Map<string, Placed>, inFan: Map<string, string>): Set<string> {
  const order = new Map(graph.nodes.map((n, i) => [n.id, i]));
  const parents = new Map<string, Set<string>>();
  for (const e of graph.edges) {
    if (inFan.has(e.to) || inFan.has(e.from) || (e.kind !== "child" && e.kind !== "dependency")) continue;
    const [parent, child] = (order.get(e.from) ?? 0) <= (order.get(e.to) ?? 0) ? [e.from, e.to] : [e.to, e.from];
    let set = parents.get(child);
    if (!set) parents.set(child, (set = new Set()));
    set.add(parent);
  }
  const families = new Map<string, string[]>();
  for (const [child, set] of parents) {
    const at = nodes.get(child);
    if (set.size !== 1 || !at) continue;
    const key = `${[...set][0]}@${Math.round(at.x)}`;
    let list = families.get(key);
    if (!list) families.set(key, (list = []));
    list.push(child);
  }
  const moved = new Set<string>();
  for (const list of families.values()) {
    if (list.length < 2) continue;
    const boxes = list.map((id) => nodes.get(id)!);
    const top = Math.min(...boxes.map((b) => b.y - b.h / 2));
    const bottom = Math.max(...boxes.map((b) => b.y + b.h / 2));
    const gap = (bottom - top - boxes.reduce((sum, b) => sum + b.h, 0)) / (list.length - 1);
    let y = top;
    for (const id of [...list].sort((a, b) => order.get(a)! - order.get(b)!)) {
      const box = nodes.get(id)!;
      const centre = y + box.h / 2;
      if (Math.abs(centre - box.y) > 0.5) moved.add(id);
      nodes.set(id, { ...box, y: centre });
      y += box.h + gap;
    }
  }
  return moved;
}

function curveBetween(from: Placed, to: Placed): { x: number; y: number }[] {
  if (to.x - to.w / 2 <= from.x + from.w / 2) return [{ x: from.x, y: from.y }, { x: to.x, y: to.y }];
  const a = { x: from.x + from.w / 2, y: from.y };
  const b = { x: to.x - to.w / 2, y: to.y };
  const mid = (a.x + b.x) / 2;
  return [a, { x: mid, y: a.y }, { x: mid, y: b.y }, b];
}

function truncate(text: string, max = MAX_LABEL): string {
  return text.length <= max ? text : text.slice(0, max - 1) + "…";
}

function pathOf(points: { x: number; y: number }[]): string {
  if (points.length === 0) return "";
  let d = `M${points[0].x.toFixed(1)},${points[0].y.toFixed(1)}`;
  if (points.length === 2) return d + `L${points[1].x.toFixed(1)},${points[1].y.toFixed(1)}`;
  // A smooth curve through dagre's control points (quadratic segments between midpoints).
  for (let i = 1; i < points.length - 1; i++) {
    const p = points[i];
    const next = points[i + 1];
    const mx = i === points.length - 2 ? next.x : (p.x + next.x) / 2;
    const my = i === points.length - 2 ? next.y : (p.y + next.y) / 2;
    d += `Q${p.x.toFixed(1)},${p.y.toFixed(1)} ${mx.toFixed(1)},${my.toFixed(1)}`;
  }
  return d;
}

function Pin({ x, y, count }: { x: number; y: number; count: number }): JSX.Element {
  return <g class="cf-pin" transform={`translate(${x},${y})`}>
    <title>memoised: {count} later call{count === 1 ? " was" : "s were"} answered by this step (see its panel)</title>
    <circle cx="0" cy="-3" r="3.2" /><line x1="0" y1="0" x2="0" y2="6" />
  </g>;
}

interface NodeProps {
  node: GraphNode;
  at: Placed;
  selected: boolean;
  /** a search or status filter is on: how many of the node's steps match (0: dimmed) */
  matches: number | null;
  onActivate: (node: GraphNode, event: Event) => void;
}

const BAR_ORDER: StatusClass[] = ["ok", "failed", "running", "pending", "other"];
const BAR_TONE: Record<StatusClass, string> = { ok: "ok", failed: "bad", running: "run", pending: "wait", other: "other" };

/** A fan-out's members as one bar: a segment per status class, widths by count. */
function StatusBar({ counts, total, width, y }: { counts: Counts; total: number; width: number; y: number }): JSX.Element {
  let x = 0;
  return <g class="cf-status-bar" transform={`translate(10,${y})`} aria-hidden="true">
    <rect class="cf-status-bar-track" width={width} height="5" rx="2" />
    {BAR_ORDER.map((cls) => {
      if (!counts[cls] || !total) return null;
      const w = Math.max(2, (counts[cls] / total) * width);
      const seg = <rect key={cls} class={`cf-status-seg cf-tone-${BAR_TONE[cls]}`} data-class={cls} x={x} width={w} height="5" />;
      x += (counts[cls] / total) * width;
      return seg;
    })}
  </g>;
}

function stepLine(step: StepModel): string {
  const look = statusLook(step.status);
  const attempts = step.executions.length > 1 ? ` · ${step.executions.length} attempts` : "";
  if (step.inputs?.some((i) => i.state === "pending")) return `waiting for input · #${step.number}`;
  return `${look.label} · #${step.number}${attempts}`;
}

function NodeView({ node, at, selected, matches, onActivate }: NodeProps): JSX.Element {
  let status = "value";
  let title = node.label;
  let sub = "";
  let stale = false;
  let pinned = false;
  let extraClass = "";
  let counts: Counts | null = null;
  if (node.kind === "step" && node.step) {
    status = node.step.status;
    sub = node.reusedFrom ? `reused from attempt ${node.reusedFrom} · #${node.step.number}` : stepLine(node.step);
    stale = node.step.stale;
    pinned = node.step.memoisedBy.length > 0;
    title = callLabel(node.step);
    if (node.step.type === "workflow") extraClass = " cf-node-workflow";
  } else if (node.kind === "group" && node.members) {
    const summary = groupStatus(node.members);
    status = summary.status;
    sub = [...summary.counts].map(([s, n]) => `${n} ${statusLook(s).label}`).join(", ");
    title = `▣ ${node.label} (${node.members.length})`;
  } else if (node.kind === "fanout" && node.members) {
    counts = countStatuses(node.members);
    status = fanStatus(counts, node.members);
    sub = countsText(counts);
    title = node.label;
  } else if (node.kind === "run") {
    status = "";
    sub = node.detail ?? "";
    title = `↗ ${node.label}`;
  }
  const look = statusLook(status);
  const cls = `cf-node cf-node-${node.kind} cf-tone-${node.kind === "run" ? "link" : look.tone}` +
    (isActive(status) && status === "running" ? " cf-node-running" : "") + (stale ? " cf-node-stale" : "") +
    (selected ? " cf-selected" : "") + (matches === 0 ? " cf-dim" : matches ? " cf-match" : "") + extraClass;
  const x = at.x - at.w / 2;
  const y = at.y - at.h / 2;
  const label = node.kind === "run" ? `${title}: ${sub}` : node.kind === "fanout" ? `${title}: ${sub}` :
    `${title}: ${look.label}${stale ? ", stale" : ""}${pinned ? ", memoised" : ""}`;
  const subMax = node.kind === "fanout" ? 36 : 30;
  const matchText = matches && node.kind !== "step" ? ` · ${matches} match` : "";
  return <g class={cls} transform={`translate(${x.toFixed(1)},${y.toFixed(1)})`} data-node={node.id}
    data-status={status} tabIndex={0} role="button" aria-label={label}
    onClick={(e) => onActivate(node, e)}
    onKeyDown={(e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onActivate(node, e); } }}>
    <rect class="cf-node-box" width={at.w} height={at.h} rx="6" />
    {node.kind !== "run" ? <text class="cf-node-icon" x="10" y="20">{look.icon}</text> : null}
    <text class="cf-node-title" x={node.kind === "run" ? 10 : 28} y="19">{truncate(title, node.kind === "fanout" ? 30 : MAX_LABEL)}{matchText ? <tspan class="cf-node-match">{matchText}</tspan> : null}</text>
    <text class="cf-node-sub" x={node.kind === "run" ? 10 : 28} y="36">{truncate(sub + (stale ? " · stale" : ""), subMax)}</text>
    {counts && node.members ? <StatusBar counts={counts} total={node.members.length} width={at.w - 20} y={at.h - 13} /> : null}
    {pinned && node.step ? <Pin x={at.w - 12} y={12} count={node.step.memoisedBy.length} /> : null}
  </g>;
}

function EdgeView({ edge, points }: { edge: GraphEdge; points: { x: number; y: number }[] }): JSX.Element {
  return <path class={`cf-edge cf-edge-${edge.kind}`} d={pathOf(points)} data-edge={edge.id}
    marker-end={`url(#cf-arrow-${edge.kind === "dependency" ? "dep" : "other"})`}>
    {edge.label ? <title>{edge.label}</title> : null}
  </path>;
}

interface View { x: number; y: number; k: number }

export function GraphView(): JSX.Element {
  const ctx = useView();
  const { model, selectedStep, selectStep, openRun } = ctx;
  const version = useModelVersion(model);
  const [expanded, setExpanded] = useState<ReadonlySet<string>>(new Set());
  const [chosenAttempts, setChosenAttempts] = useState<ReadonlyMap<string, number>>(new Map());
  const buildStarted = useRef(0); // when the latest graph model began to be built (from the run's steps)
  const full = useMemo(() => { buildStarted.current = performance.now(); return buildGraph(model, chosenAttempts); },
    [model, version, chosenAttempts]);
  const graph = useMemo(() => collapseFanOuts(full, expanded), [full, expanded]);
  const layout = useMemo(() => layoutGraph(graph), [graph.structureKey]);
  const [groupOpen, setGroupOpen] = useState<string | null>(null);
  const [query, setQuery] = useState<StepQuery>({ text: "", status: "" });
  const [listClosed, setListClosed] = useState(false); // the matches list, closed by the user
  const rootRef = useRef<HTMLDivElement>(null);
  const svgRef = useRef<SVGSVGElement>(null);
  const sceneRef = useRef<SVGGElement>(null);
  const view = useRef<View>({ x: 0, y: 0, k: 1 });
  const touched = useRef(false); // the user panned or zoomed: keep their view across re-layouts
  const drag = useRef<{ x: number; y: number; vx: number; vy: number; moved: boolean } | null>(null);
  const suppressClick = useRef(false);
  const layouts = useRef(0);

  const apply = () => {
    const v = view.current;
    sceneRef.current?.setAttribute("transform", `translate(${v.x.toFixed(1)},${v.y.toFixed(1)}) scale(${v.k.toFixed(4)})`);
    // Zoomed far out, labels would be a pixel high: drawing only the boxes keeps a 1,000-node
    // graph fast to pan and zoom (each node still has its status in its label for assistive tech).
    svgRef.current?.classList.toggle("cf-zoomed-out", v.k < LABEL_MIN_SCALE);
  };
  const fit = () => {
    const svg = svgRef.current;
    if (!svg) return;
    const w = svg.clientWidth || 800;
    const h = svg.clientHeight || 500;
    const k = Math.min(w / Math.max(layout.width, 1), h / Math.max(layout.height, 1), 1.25);
    view.current = { k, x: (w - layout.width * k) / 2, y: (h - layout.height * k) / 2 };
    apply();
  };
  useLayoutEffect(() => {
    if (!touched.current) fit();
    else apply();
    svgRef.current?.setAttribute("data-layout-ms", layout.ms.toFixed(1));
    layouts.current += 1; // how many layouts this view has made (a test checks recolouring does not re-lay out)
    svgRef.current?.setAttribute("data-layouts", String(layouts.current));
  }, [layout]);
  const measured = useRef(0);
  useLayoutEffect(() => {
    // From building the graph model out of the steps, through collapsing, layout and the DOM
    // commit, to the next painted frame: how long the latest graph took to draw (tests read it).
    const svg = svgRef.current;
    const started = buildStarted.current;
    if (!svg || started === measured.current) return;
    measured.current = started;
    // (a task queued from the next animation frame runs once that frame is painted)
    requestAnimationFrame(() => setTimeout(() => svg.setAttribute("data-draw-ms", (performance.now() - started).toFixed(1)), 0));
  });
  useEffect(() => {
    const svg = svgRef.current;
    if (!svg) return undefined;
    const onWheel = (event: WheelEvent) => {
      event.preventDefault();
      const rect = svg.getBoundingClientRect();
      const px = event.clientX - rect.left;
      const py = event.clientY - rect.top;
      const v = view.current;
      const k = Math.min(4, Math.max(0.02, v.k * Math.exp(-event.deltaY * 0.0015)));
      view.current = { k, x: px - ((px - v.x) * k) / v.k, y: py - ((py - v.y) * k) / v.k };
      touched.current = true;
      apply();
    };
    svg.addEventListener("wheel", onWheel, { passive: false });
    return () => svg.removeEventListener("wheel", onWheel);
  }, []);
  const fitRef = useRef(fit);
  fitRef.current = fit;
  useEffect(() => {
    // The box changes size (the step panel opens, the output resizes): fit again, unless the
    // user has placed the view themselves.
    const svg = svgRef.current;
    if (!svg || typeof ResizeObserver === "undefined") return undefined;
    const observer = new ResizeObserver(() => { if (!touched.current) fitRef.current(); });
    observer.observe(svg);
    return () => observer.disconnect();
  }, []);

  const onPointerDown = (event: PointerEvent) => {
    if (event.button !== 0) return;
    drag.current = { x: event.clientX, y: event.clientY, vx: view.current.x, vy: view.current.y, moved: false };
  };
  const onPointerMove = (event: PointerEvent) => {
    const d = drag.current;
    if (!d) return;
    const dx = event.clientX - d.x;
    const dy = event.clientY - d.y;
    if (!d.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    if (!d.moved) svgRef.current?.setPointerCapture(event.pointerId);
    d.moved = true;
    touched.current = true;
    view.current = { ...view.current, x: d.vx + dx, y: d.vy + dy };
    apply();
  };
  const onPointerUp = (event: PointerEvent) => {
    const d = drag.current;
    drag.current = null;
    if (d?.moved) {
      suppressClick.current = true; // the click that ends a drag selects nothing
      setTimeout(() => { suppressClick.current = false; }, 0);
      svgRef.current?.releasePointerCapture?.(event.pointerId);
    }
  };
  const onActivate = (node: GraphNode, event: Event) => {
    event.stopPropagation();
    if (suppressClick.current) return;
    if (node.kind === "step" && node.step) selectStep(node.step.id);
    else if (node.kind === "group" || node.kind === "fanout") setGroupOpen(groupOpen === node.id ? null : node.id);
    else if (node.kind === "run" && node.runId && openRun) openRun(node.runId);
  };

  const steps = full.nodes.length ? model.steps() : [];
  const active = queryActive(query);
  const matching = useMemo(() => (active ? steps.filter((s) => stepMatches(s, query)) : []), [steps, version, query]);
  const matchesOf = useMemo(() => {
    if (!active) return null;
    const perNode = new Map<string, number>();
    for (const s of matching) {
      const node = graph.nodeOfStep.get(s.id);
      if (node) perNode.set(node, (perNode.get(node) ?? 0) + 1);
    }
    return perNode;
  }, [matching, graph, active]);
  const failures = useMemo(() => steps.filter((s) => statusLook(s.status).tone === "bad").length, [steps, version]);

  /** Select a step; inside a collapsed fan-out or group, open its list at that step. */
  const reveal = (stepId: string) => {
    selectStep(stepId);
    const node = graph.nodeOfStep.get(stepId);
    if (node && node !== stepId) setGroupOpen(node);
  };
  const goFailure = (dir: 1 | -1) => {
    const step = nextFailure(steps, selectedStep, dir);
    if (step) reveal(step.id);
  };
  const onKey = (event: KeyboardEvent) => {
    const target = event.target as HTMLElement | null;
    if (target && (target.tagName === "INPUT" || target.tagName === "SELECT" || target.tagName === "TEXTAREA")) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    // Handled keys stop here: JupyterLab's own shortcuts (n, p in command mode) never see them.
    const handled = () => { event.preventDefault(); event.stopPropagation(); };
    if (event.key === "n" || event.key === "]") { handled(); goFailure(1); }
    else if (event.key === "p" || event.key === "[") { handled(); goFailure(-1); }
    else if (event.key === "/") { handled(); rootRef.current?.querySelector<HTMLInputElement>(".cf-graph-search")?.focus(); }
  };
  const onKeyRef = useRef(onKey);
  onKeyRef.current = onKey;
  useEffect(() => {
    // The keys work anywhere in the run view (the step panel takes focus when a failure opens).
    const scope = rootRef.current?.closest(".cf-root") ?? rootRef.current;
    if (!scope) return undefined;
    const listener = (event: Event) => onKeyRef.current(event as KeyboardEvent);
    scope.addEventListener("keydown", listener);
    return () => scope.removeEventListener("keydown", listener);
  }, []);

  const selectedNode = selectedStep ? graph.nodeOfStep.get(selectedStep) : undefined;
  const group = groupOpen ? graph.nodes.find((n) => n.id === groupOpen) : undefined;
  const listSteps = group?.members ? (active ? group.members.filter((m) => stepMatches(m, query)) : group.members) :
    active && !listClosed ? matching : null;
  const listTitle = group ? group.label : `${matching.length} matching step${matching.length === 1 ? "" : "s"}`;
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const setQueryAndShow = (next: StepQuery) => { setQuery(next); setListClosed(false); };

  return <div class="cf-graph" ref={rootRef} data-nodes={graph.nodes.length} data-edges={graph.edges.length}
    data-steps={steps.length}>
    <div class="cf-graph-toolbar">
      <button type="button" class="cf-button" onClick={() => { touched.current = false; fit(); }} title="fit the graph in view">⤢ Fit</button>
      <button type="button" class="cf-button" aria-label="zoom in" onClick={() => { const v = view.current; view.current = { ...v, k: Math.min(4, v.k * 1.25) }; touched.current = true; apply(); }}>+</button>
      <button type="button" class="cf-button" aria-label="zoom out" onClick={() => { const v = view.current; view.current = { ...v, k: Math.max(0.02, v.k / 1.25) }; touched.current = true; apply(); }}>−</button>
      <input class="cf-input cf-graph-search" type="search" placeholder="search target / argument" title="search the steps by target, #number or argument (key: /)"
        aria-label="search steps" value={query.text}
        onInput={(e) => setQueryAndShow({ ...query, text: (e.target as HTMLInputElement).value })} />
      <select class="cf-input cf-graph-status" aria-label="status filter" value={query.status}
        onChange={(e) => setQueryAndShow({ ...query, status: (e.target as HTMLSelectElement).value as StatusClass | "" })}>
        <option value="">any status</option>
        {STATUS_CLASSES.map((c) => <option key={c} value={c}>{c}</option>)}
      </select>
      <button type="button" class="cf-button cf-prev-failure" disabled={!failures} onClick={() => goFailure(-1)}
        aria-label="previous failure" title="previous failure (keys: p or [ anywhere in the run view)">◀ failure</button>
      <button type="button" class="cf-button cf-next-failure" disabled={!failures} onClick={() => goFailure(1)}
        aria-label="next failure" title="next failure (keys: n or ] anywhere in the run view; / searches)">failure ▶</button>
      {failures ? <span class="cf-tone-bad cf-failure-count">{failures} failed</span> : null}
      {expanded.size ? <button type="button" class="cf-button" onClick={() => setExpanded(new Set())}
        title="collapse every fan-out again">collapse fan-outs</button> : null}
      <span class="cf-muted cf-graph-count">{active ? `${matching.length} of ${steps.length} steps match · ` : ""}{graph.nodes.length} nodes</span>
      {graph.attemptChoices.map((choice) => <label key={choice.step.id} class="cf-attempt-choice">
        {choice.step.target} #{choice.step.number} attempt{" "}
        <select class="cf-input" aria-label={`attempt of ${choice.step.target} #${choice.step.number} whose calls the graph shows`}
          value={String(choice.shown)}
          onChange={(e) => {
            const attempt = Number((e.target as HTMLSelectElement).value);
            setChosenAttempts((old) => new Map(old).set(choice.step.id, attempt));
          }}>
          {choice.attempts.map((a) => {
            const cause = choice.step.executions.find((x) => x.attempt === a)?.cause;
            return <option key={a} value={String(a)}>{a}{cause ? ` (${cause})` : ""}</option>;
          })}
        </select>
      </label>)}
    </div>
    <div class="cf-graph-body">
    <svg ref={svgRef} class="cf-graph-svg" role="group" aria-label="run graph" tabIndex={-1}
      onPointerDown={(e) => { svgRef.current?.focus({ preventScroll: true }); onPointerDown(e); }} onPointerMove={onPointerMove} onPointerUp={onPointerUp}
      onClick={() => { if (!suppressClick.current) setGroupOpen(null); }}>
      <defs>
        <marker id="cf-arrow-dep" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M0,0 L10,5 L0,10 z" class="cf-arrow-dep" />
        </marker>
        <marker id="cf-arrow-other" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
          <path d="M0,0 L10,5 L0,10 z" class="cf-arrow-other" />
        </marker>
      </defs>
      <g ref={sceneRef}>
        <g class="cf-fans">
          {layout.fans.map((fan) => <g key={fan.id} class="cf-fan" data-fan={fan.parent}>
            <rect class="cf-fan-box" x={fan.box.x - fan.box.w / 2} y={fan.box.y - fan.box.h / 2} width={fan.box.w} height={fan.box.h} rx="8" />
            <text class="cf-fan-label" x={fan.box.x - fan.box.w / 2 + 12} y={fan.box.y - fan.box.h / 2 + 18}>{fan.count} steps submitted together</text>
            {fan.edge.length ? <path class={`cf-edge cf-edge-${fan.kind}`} d={pathOf(fan.edge)}
              marker-end={`url(#cf-arrow-${fan.kind === "dependency" ? "dep" : "other"})`} /> : null}
          </g>)}
        </g>
        <g class="cf-edges">
          {graph.edges.map((edge) => {
            const points = layout.edges.get(edge.id);
            return points ? <EdgeView key={edge.id} edge={edge} points={points} /> : null;
          })}
        </g>
        <g class="cf-nodes">
          {graph.nodes.map((node) => {
            const at = layout.nodes.get(node.id);
            return at ? <NodeView key={node.id} node={byId.get(node.id)!} at={at}
              matches={matchesOf ? matchesOf.get(node.id) ?? 0 : null}
              selected={node.id === selectedNode || node.id === groupOpen} onActivate={onActivate} /> : null;
          })}
        </g>
      </g>
    </svg>
    {listSteps ? <MemberList title={listTitle} steps={listSteps} selectedStep={selectedStep}
      onSelect={(id) => selectStep(id)}
      onClose={() => { if (group) setGroupOpen(null); else setListClosed(true); }}
      onShowGraph={group?.kind === "fanout" ? () => {
        setExpanded(new Set([...expanded, group.id]));
        setGroupOpen(null);
      } : undefined} /> : null}
    </div>
  </div>;
}
