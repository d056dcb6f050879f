// The run graph: dagre layout drawn in SVG, with pan (drag), zoom (wheel) and fit. The layout is
// memoised on the graph's structure key: status changes only recolour the nodes.
import dagre from "@dagrejs/dagre";
import type { JSX } from "preact";
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import type { StepModel } from "../store/types";
import { useModelVersion, useView } from "./context";
import { buildGraph, groupStatus, type GraphEdge, type GraphNode, type RunGraph } from "./graphmodel";
import { isActive, statusLook } from "./status";

const NODE_W = 190;
const NODE_H = 46;
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
  for (const node of graph.nodes) if (!inFan.has(node.id)) g.setNode(node.id, { width: NODE_W, height: NODE_H });
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
  const edges = new Map<string, { x: number; y: number }[]>();
  for (const edge of graph.edges) {
    const e = g.hasEdge(edge.from, edge.to) ? g.edge(edge.from, edge.to) as { points?: { x: number; y: number }[] } : undefined;
    if (e?.points) edges.set(edge.id, e.points);
  }
  const info = g.graph() as { width?: number; height?: number };
  return { nodes, edges, fans: fanList, width: info.width ?? 0, height: info.height ?? 0, ms: performance.now() - started };
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
  onActivate: (node: GraphNode, event: Event) => void;
}

function stepLine(step: StepModel): string {
  const look = statusLook(step.status);
  const attempts = step.executions.length > 1 ? ` · ${step.executions.length} attempts` : "";
  if (step.inputs?.some((i) => i.state === "pending")) return `waiting for input · #${step.number}`;
  return `${look.label} · #${step.number}${attempts}`;
}

function NodeView({ node, at, selected, onActivate }: NodeProps): JSX.Element {
  let status = "value";
  let title = node.label;
  let sub = "";
  let stale = false;
  let pinned = false;
  let extraClass = "";
  if (node.kind === "step" && node.step) {
    status = node.step.status;
    sub = stepLine(node.step);
    stale = node.step.stale;
    pinned = node.step.memoisedBy.length > 0;
    title = node.step.target;
    if (node.step.type === "workflow") extraClass = " cf-node-workflow";
  } else if (node.kind === "group" && node.members) {
    const summary = groupStatus(node.members);
    status = summary.status;
    sub = [...summary.counts].map(([s, n]) => `${n} ${statusLook(s).label}`).join(", ");
    title = `▣ ${node.label} (${node.members.length})`;
  } else if (node.kind === "run") {
    status = "";
    sub = node.detail ?? "";
    title = `↗ ${node.label}`;
  }
  const look = statusLook(status);
  const cls = `cf-node cf-node-${node.kind} cf-tone-${node.kind === "run" ? "link" : look.tone}` +
    (isActive(status) && status === "running" ? " cf-node-running" : "") + (stale ? " cf-node-stale" : "") +
    (selected ? " cf-selected" : "") + extraClass;
  const x = at.x - at.w / 2;
  const y = at.y - at.h / 2;
  const label = node.kind === "run" ? `${title}: ${sub}` :
    `${title}: ${look.label}${stale ? ", stale" : ""}${pinned ? ", memoised" : ""}`;
  return <g class={cls} transform={`translate(${x.toFixed(1)},${y.toFixed(1)})`} data-node={node.id}
    data-status={status} tabIndex={0} role="button" aria-label={label}
    onClick={(e) => onActivate(node, e)}
    onKeyDown={(e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onActivate(node, e); } }}>
    <rect class="cf-node-box" width={at.w} height={at.h} rx="6" />
    {node.kind !== "run" ? <text class="cf-node-icon" x="10" y="20">{look.icon}</text> : null}
    <text class="cf-node-title" x={node.kind === "run" ? 10 : 28} y="19">{truncate(title)}</text>
    <text class="cf-node-sub" x={node.kind === "run" ? 10 : 28} y="36">{truncate(sub + (stale ? " · stale" : ""), 30)}</text>
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
  const graph = useMemo(() => buildGraph(model), [model, version]);
  const layout = useMemo(() => layoutGraph(graph), [graph.structureKey]);
  const [groupOpen, setGroupOpen] = useState<string | null>(null);
  const [filter, setFilter] = useState("");
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
    else if (node.kind === "group") setGroupOpen(groupOpen === node.id ? null : node.id);
    else if (node.kind === "run" && node.runId && openRun) openRun(node.runId);
  };

  const selectedNode = selectedStep ? graph.nodeOfStep.get(selectedStep) : undefined;
  const group = groupOpen ? graph.nodes.find((n) => n.id === groupOpen) : undefined;
  const members = group?.members?.filter((m) => !filter || `${m.target} #${m.number} ${m.status}`.includes(filter)) ?? [];
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));

  return <div class="cf-graph" data-nodes={graph.nodes.length} data-edges={graph.edges.length}>
    <div class="cf-graph-toolbar">
      <button type="button" class="cf-button" onClick={() => { touched.current = false; fit(); }} title="fit the graph in view">⤢ Fit</button>
      <button type="button" class="cf-button" aria-label="zoom in" onClick={() => { const v = view.current; view.current = { ...v, k: Math.min(4, v.k * 1.25) }; touched.current = true; apply(); }}>+</button>
      <button type="button" class="cf-button" aria-label="zoom out" onClick={() => { const v = view.current; view.current = { ...v, k: Math.max(0.02, v.k / 1.25) }; touched.current = true; apply(); }}>−</button>
      <span class="cf-legend" aria-label="edge legend">
        <svg width="28" height="8" aria-hidden="true"><line class="cf-edge cf-edge-dependency" x1="0" y1="4" x2="28" y2="4" /></svg> waited on
        <svg width="28" height="8" aria-hidden="true"><line class="cf-edge cf-edge-child" x1="0" y1="4" x2="28" y2="4" /></svg> submitted
        <svg width="28" height="8" aria-hidden="true"><line class="cf-edge cf-edge-childrun" x1="0" y1="4" x2="28" y2="4" /></svg> child run / spawned
        <svg width="28" height="8" aria-hidden="true"><line class="cf-edge cf-edge-successor" x1="0" y1="4" x2="28" y2="4" /></svg> cached / deferred / memo
      </span>
      <span class="cf-muted cf-graph-count">{graph.nodes.length} nodes</span>
    </div>
    <svg ref={svgRef} class="cf-graph-svg" role="group" aria-label="run graph"
      onPointerDown={onPointerDown} onPointerMove={onPointerMove} onPointerUp={onPointerUp}
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
              selected={node.id === selectedNode || node.id === groupOpen} onActivate={onActivate} /> : null;
          })}
        </g>
      </g>
    </svg>
    {group ? <div class="cf-group-popover" role="dialog" aria-label={`members of ${group.label}`}
      onKeyDown={(e) => { if (e.key === "Escape") setGroupOpen(null); }}>
      <div class="cf-group-head">
        <strong>{group.label}</strong> <span class="cf-muted">{group.members?.length} members</span>
        <button type="button" class="cf-button cf-close" aria-label="close" onClick={() => setGroupOpen(null)}>×</button>
      </div>
      <input class="cf-input" type="search" placeholder="filter members" value={filter} aria-label="filter members"
        onInput={(e) => setFilter((e.target as HTMLInputElement).value)} />
      <ul class="cf-group-members" role="listbox" aria-label="group members">
        {members.slice(0, 500).map((m) => {
          const look = statusLook(m.status);
          return <li key={m.id} role="option" aria-selected={m.id === selectedStep} tabIndex={0}
            class={`cf-group-member cf-tone-${look.tone}${m.id === selectedStep ? " cf-selected" : ""}`}
            onClick={() => selectStep(m.id)}
            onKeyDown={(e) => { if (e.key === "Enter") selectStep(m.id); }}>
            <span class="cf-status-icon" aria-hidden="true">{look.icon}</span> {m.target} #{m.number}
            <span class="cf-status-text">{look.label}</span>
          </li>;
        })}
        {members.length > 500 ? <li class="cf-muted">… {members.length - 500} more (filter to narrow)</li> : null}
      </ul>
    </div> : null}
  </div>;
}
