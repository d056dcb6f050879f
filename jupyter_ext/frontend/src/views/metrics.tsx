// Metrics: one plotly chart per MetricGroup (its x axis and units), series of one MetricScale
// sharing a y axis, each ungrouped metric a chart of its own, progress metrics as progress bars.
// Many series of one key (a fan-out's steps) draw as a band, each step on demand (metricbands.ts).
// Live: new points are appended with Plotly.extendTraces (at most once a frame); a new series
// redraws its chart with Plotly.react.
import type { JSX } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { useThemeVersion } from "./themewatch";
import type { MetricSeries } from "../api/types";
import type { CofluxApi, RunModel } from "../store/types";
import { useModelVersion, useView } from "./context";
import { stepOfExecution } from "./format";
import { BAND_KINDS, BAND_MIN, band, bandNames, joined, niceStep, seriesName, type BandKind } from "./metricbands";
import { loadPlotly, type PlotlyModule } from "./plotly";

export interface ChartSpec {
  id: string;
  title: string;
  xTitle: string;
  xRange: [number | null, number | null];
  series: MetricSeries[];
  /** scale name ("" = none) -> axis number (1-based) */
  axes: Map<string, number>;
}

function scaleName(s: MetricSeries): string {
  return s.scale?.name ?? "";
}

export function chartSpecs(all: readonly MetricSeries[]): { charts: ChartSpec[]; progress: MetricSeries[] } {
  const charts = new Map<string, ChartSpec>();
  const progress: MetricSeries[] = [];
  for (const s of all) {
    if (s.scale?.progress) { progress.push(s); continue; }
    const id = s.group ? `group:${s.group.name}` : `metric:${s.key}`;
    let chart = charts.get(id);
    if (!chart) {
      chart = {
        id, title: s.group ? s.group.name : s.key,
        xTitle: s.group ? (s.group.units ?? s.group.name) : "seconds since the step started",
        xRange: [s.group?.lower ?? null, s.group?.upper ?? null], series: [], axes: new Map(),
      };
      charts.set(id, chart);
    }
    chart.series.push(s);
    const name = scaleName(s);
    if (!chart.axes.has(name)) chart.axes.set(name, chart.axes.size + 1);
  }
  return { charts: [...charts.values()], progress };
}

// A chart is a few hundred pixels wide: past this many points a series is drawn from the
// minimum and maximum of each of DECIMATE_BUCKETS slices (actual points, so the shape, the
// extremes and the hover values stay true), which keeps 10 x 10,000 points well under a second.
const DECIMATE_BUCKETS = 800;

export function decimate(points: [number, number][], buckets = DECIMATE_BUCKETS): [number, number][] {
  if (points.length <= buckets * 2) return points;
  const out: [number, number][] = [];
  const size = points.length / buckets;
  for (let b = 0; b < buckets; b++) {
    const start = Math.floor(b * size);
    const end = Math.min(points.length, Math.floor((b + 1) * size));
    let lo = start;
    let hi = start;
    for (let i = start + 1; i < end; i++) {
      if (points[i][1] < points[lo][1]) lo = i;
      if (points[i][1] > points[hi][1]) hi = i;
    }
    if (lo === hi) out.push(points[lo]);
    else if (lo < hi) out.push(points[lo], points[hi]);
    else out.push(points[hi], points[lo]);
  }
  const last = points[points.length - 1];
  if (out[out.length - 1] !== last) out.push(last);
  return out;
}

function cssVar(el: Element, name: string, fallback: string): string {
  return getComputedStyle(el).getPropertyValue(name).trim() || fallback;
}

// plotly's own colour cycle, named here so the chart's HTML legend shows the same colours.
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function rgba(hex: string, alpha: number): string {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

export interface LegendEntry { id: string; name: string; color: string; look: "line" | "band" | "each"; traces: number[] }
export interface DrawOptions { each: boolean; kind: BandKind; hidden: ReadonlySet<string> }

/** The keys of a chart drawn as bands (BAND_MIN or more series of the key). */
function bandedKeys(spec: ChartSpec): Set<string> {
  const count = new Map<string, number>();
  for (const s of spec.series) count.set(s.key, (count.get(s.key) ?? 0) + 1);
  return new Set([...count].filter(([, n]) => n >= BAND_MIN).map(([k]) => k));
}

function axisTicks(lower: number | null | undefined, upper: number | null | undefined): Record<string, unknown> {
  if (lower == null || upper == null || !(upper > lower)) return {};
  // The declared bounds, with round ticks from the lower one (0-100: 0, 20, 40, ...).
  return { range: [lower, upper], autorange: false, tickmode: "linear", tick0: lower, dtick: niceStep(lower, upper) };
}

function figure(model: RunModel, spec: ChartSpec, el: Element, options: DrawOptions) {
  const keys = new Map<string, MetricSeries[]>();
  for (const s of spec.series) {
    let list = keys.get(s.key);
    if (!list) keys.set(s.key, (list = []));
    list.push(s);
  }
  const fg = cssVar(el, "--cf-fg", "#222");
  const muted = cssVar(el, "--cf-fg-muted", "#666");
  const bg = cssVar(el, "--cf-bg", "#fff");
  const raised = cssVar(el, "--cf-bg-raised", "#eee");
  const grid = cssVar(el, "--cf-border-soft", "#ddd");
  const data: Record<string, unknown>[] = [];
  const legend: LegendEntry[] = [];
  const stepOf = (s: MetricSeries) => model.step(stepOfExecution(s.execution_id)) ?? null;
  let colour = 0;
  for (const [key, list] of keys) {
    const axis = spec.axes.get(scaleName(list[0])) ?? 1;
    const yaxis = axis === 1 ? "y" : `y${axis}`;
    const units = list[0].scale?.units ? ` ${list[0].scale.units}` : "";
    if (list.length >= BAND_MIN) {
      const color = PALETTE[colour++ % PALETTE.length];
      const names = bandNames(key, list.length, options.kind);
      if (options.each) {
        const all = joined(list.map((s) => ({ points: decimate(s.points), name: seriesName(key, stepOf(s), true, s.execution_id) })));
        const id = `${key}/each`;
        legend.push({ id, name: `${key}: each of ${list.length} steps`, color, look: "each", traces: [data.length] });
        data.push({ type: "scatter", mode: "lines", name: `${key}: each step`, x: all.x, y: all.y, text: all.text, yaxis,
          line: { color: rgba(color, 0.35), width: 1 }, hovertemplate: `%{text}: %{y}${units}<extra></extra>`,
          visible: !options.hidden.has(id) });
      }
      const b = band(list, options.kind);
      const id = `${key}/band`;
      const visible = !options.hidden.has(id);
      legend.push({ id, name: `${names.mid} (${names.range.slice(key.length + 2)})`, color, look: "band",
        traces: [data.length, data.length + 1, data.length + 2] });
      data.push({ type: "scatter", mode: "lines", name: `${names.range} (low)`, x: b.x, y: b.lo, yaxis,
        line: { width: 0, color }, hoverinfo: "skip", visible });
      data.push({ type: "scatter", mode: "lines", name: names.range, x: b.x, y: b.hi, yaxis, fill: "tonexty",
        fillcolor: rgba(color, 0.22), line: { width: 0, color }, hoverinfo: "skip", visible });
      data.push({ type: "scatter", mode: "lines", name: names.mid, x: b.x, y: b.mid, yaxis,
        line: { width: 2, color }, hovertemplate: `${names.mid}: %{y}${units}<extra></extra>`, visible });
      continue;
    }
    for (const s of list) {
      const color = PALETTE[colour++ % PALETTE.length];
      const points = decimate(s.points);
      const name = seriesName(key, stepOf(s), list.length > 1, s.execution_id);
      const id = `${s.execution_id}/${key}`;
      legend.push({ id, name, color, look: "line", traces: [data.length] });
      data.push({
        type: "scatter", mode: s.points.length > 200 ? "lines" : "lines+markers", name,
        x: points.map((p) => p[0]), y: points.map((p) => p[1]), yaxis, marker: { size: 4, color }, line: { color },
        hovertemplate: `${name}: %{y}${units}<extra></extra>`, visible: !options.hidden.has(id),
      });
    }
  }
  const extra = Math.max(0, spec.axes.size - 2);
  const layout: Record<string, unknown> = {
    // The title and the legend are HTML around the plot: neither can sit under plotly's toolbar
    // or on an axis title, and 300 legend entries never squeeze the plot.
    autosize: true, height: 260, showlegend: false,
    margin: { l: 62, r: spec.axes.size > 1 ? 62 + extra * 56 : 16, t: 30, b: 44 }, // t: room for the toolbar
    paper_bgcolor: bg, plot_bgcolor: bg, font: { color: fg, size: 11 },
    hoverlabel: { bgcolor: raised, bordercolor: grid, font: { color: fg } },
    modebar: { bgcolor: "rgba(0,0,0,0)", color: muted, activecolor: fg },
    xaxis: { title: { text: spec.xTitle, standoff: 6 }, gridcolor: grid, zerolinecolor: grid, linecolor: grid,
      domain: [0, 1 - extra * 0.07], ...axisTicks(spec.xRange[0], spec.xRange[1]) },
  };
  for (const [name, n] of spec.axes) {
    const sample = spec.series.find((s) => scaleName(s) === name);
    const scale = sample?.scale;
    const title = name ? `${name}${scale?.units ? ` (${scale.units})` : ""}` : (spec.axes.size > 1 ? "value" : "");
    const axis: Record<string, unknown> = { title: { text: title, standoff: 6 }, gridcolor: grid, zerolinecolor: grid,
      linecolor: grid, ...axisTicks(scale?.lower, scale?.upper) };
    if (n > 1) {
      Object.assign(axis, { overlaying: "y", side: "right", showgrid: false });
      if (n > 2) Object.assign(axis, { anchor: "free", position: 1 - (extra - (n - 2)) * 0.07 });
    }
    layout[n === 1 ? "yaxis" : `yaxis${n}`] = axis;
  }
  return { data, layout, legend };
}

function Legend({ entries, hidden, onToggle }: { entries: LegendEntry[]; hidden: ReadonlySet<string>; onToggle: (id: string) => void }): JSX.Element | null {
  if (entries.length < 2 && !entries.some((e) => e.look !== "line")) return null;
  return <ul class="cf-chart-legend" aria-label="series" data-entries={entries.length}>
    {entries.map((e) => <li key={e.id}>
      <button type="button" class={`cf-legend-entry cf-legend-${e.look}${hidden.has(e.id) ? " cf-legend-off" : ""}`}
        aria-pressed={!hidden.has(e.id)} title={`${e.name} (click to ${hidden.has(e.id) ? "show" : "hide"})`} onClick={() => onToggle(e.id)}>
        <span class="cf-legend-swatch" style={{ background: e.look === "band" ? rgba(e.color, 0.35) : e.color, borderColor: e.color }} />
        {e.name}
      </button>
    </li>)}
  </ul>;
}

function Chart({ api, model, spec, version }: { api: CofluxApi; model: RunModel; spec: ChartSpec; version: number }): JSX.Element {
  const ref = useRef<HTMLDivElement>(null);
  const [error, setError] = useState("");
  const [each, setEach] = useState(false);
  const [kind, setKind] = useState<BandKind>("minmax");
  const [hidden, setHidden] = useState<ReadonlySet<string>>(new Set());
  const [legend, setLegend] = useState<LegendEntry[]>([]);
  const banded = useMemo(() => bandedKeys(spec), [spec, spec.series.length]);
  // what is on screen: the series, their point counts, and the counts when last drawn whole
  const drawn = useRef<{ traces: string; counts: number[]; base: number[] } | null>(null);
  const plotly = useRef<PlotlyModule | null>(null);
  const frame = useRef(0);
  const options = useRef<DrawOptions>({ each, kind, hidden });
  options.current = { each, kind, hidden };

  const draw = () => {
    frame.current = 0;
    const el = ref.current;
    const P = plotly.current;
    if (!el || !P) return;
    const opts = options.current;
    const traces = spec.series.map((s) => `${s.execution_id}/${s.key}`).join("|") + `#${spec.axes.size}` +
      `#${opts.each}/${opts.kind}/${[...opts.hidden].join(",")}`;
    const counts = spec.series.map((s) => s.points.length);
    const before = drawn.current;
    const started = performance.now();
    // Appending is cheap, but a decimated series is drawn afresh once it has grown by a quarter,
    // and a band is computed afresh from all its series.
    const regrow = before !== null && (bandedKeys(spec).size > 0 ||
      counts.some((n, i) => n > DECIMATE_BUCKETS * 2 && n > (before.base[i] ?? 0) * 1.25));
    if (before && before.traces === traces && !regrow) {
      const idx: number[] = [];
      const xs: number[][] = [];
      const ys: number[][] = [];
      spec.series.forEach((s, i) => {
        if (s.points.length > before.counts[i]) {
          const fresh = s.points.slice(before.counts[i]);
          idx.push(i); xs.push(fresh.map((p) => p[0])); ys.push(fresh.map((p) => p[1]));
        }
      });
      if (idx.length) void P.extendTraces(el, { x: xs, y: ys }, idx);
    } else {
      const { data, layout, legend: entries } = figure(model, spec, el, opts);
      const config = { responsive: true, displaylogo: false, displayModeBar: "hover" as const };
      if (before) void P.react(el, data as never, layout as never, config);
      else void P.newPlot(el, data as never, layout as never, config);
      setLegend(entries);
    }
    const appended = before !== null && before.traces === traces && !regrow;
    drawn.current = { traces, counts, base: appended ? before.base : counts };
    el.setAttribute("data-drawn", String(counts.reduce((a, b) => a + b, 0)));
    el.setAttribute("data-draw-ms", (performance.now() - started).toFixed(1));
    el.setAttribute("data-drawn-at", performance.now().toFixed(1));
  };
  const redraw = () => { if (plotly.current && !frame.current) frame.current = requestAnimationFrame(draw); };

  useEffect(() => {
    let live = true;
    loadPlotly(api).then((P) => { if (live) { plotly.current = P; draw(); } },
      (e: unknown) => { if (live) setError(`charts unavailable: ${String(e)}`); });
    return () => {
      live = false;
      if (frame.current) cancelAnimationFrame(frame.current);
      if (ref.current && plotly.current) plotly.current.purge(ref.current);
    };
  }, [api]);
  useEffect(redraw, [version, each, kind, hidden]);
  const theme = useThemeVersion();
  useEffect(() => {
    if (!plotly.current) return;
    // The colours are baked into the figure: draw it whole again with the new theme's.
    if (drawn.current) drawn.current = { ...drawn.current, traces: "" };
    redraw();
  }, [theme]);
  const toggle = (id: string) => {
    const next = new Set(hidden);
    if (!next.delete(id)) next.add(id);
    setHidden(next);
  };

  return <figure class="cf-chart-box" aria-label={`chart ${spec.title}`} data-banded={banded.size}>
    <figcaption class="cf-chart-head">
      <strong class="cf-chart-title">{spec.title}</strong>
      {banded.size ? <>
        <label class="cf-muted">band <select class="cf-input" aria-label={`band of ${spec.title}`} value={kind}
          onChange={(e) => setKind((e.target as HTMLSelectElement).value as BandKind)}>
          {BAND_KINDS.map((k) => <option key={k.id} value={k.id}>{k.label}</option>)}
        </select></label>
        <label class="cf-muted"><input type="checkbox" checked={each} aria-label={`each step of ${spec.title}`}
          onChange={(e) => setEach((e.target as HTMLInputElement).checked)} /> each step</label>
      </> : null}
    </figcaption>
    {error ? <div class="cf-error-text">{error}</div> : null}
    <div class="cf-chart" ref={ref} data-chart={spec.id} />
    <Legend entries={legend} hidden={hidden} onToggle={toggle} />
  </figure>;
}

function ProgressBar({ model, series }: { model: RunModel; series: MetricSeries }): JSX.Element {
  const last = series.points.length ? series.points[series.points.length - 1][1] : 0;
  const lower = series.scale?.lower ?? 0;
  const upper = series.scale?.upper ?? null;
  const fraction = upper != null && upper > lower ? Math.min(1, Math.max(0, (last - lower) / (upper - lower))) : null;
  const step = model.step(stepOfExecution(series.execution_id));
  const label = `${series.key}${step ? ` (${step.target} #${step.number})` : ""}`;
  const text = upper != null ? `${last} / ${upper}${fraction != null ? ` (${Math.round(fraction * 100)}%)` : ""}` : `${last}`;
  return <div class="cf-progress" data-metric={series.key}>
    <div class="cf-progress-label"><span>{label}</span><span class="cf-muted">{text}</span></div>
    <div class="cf-progress-track" role="progressbar" aria-label={label} aria-valuemin={lower}
      aria-valuemax={upper ?? undefined} aria-valuenow={last} aria-valuetext={text}>
      <div class={`cf-progress-fill${fraction === 1 ? " cf-progress-done" : ""}`}
        style={{ width: fraction != null ? `${(fraction * 100).toFixed(1)}%` : "100%" }} />
    </div>
  </div>;
}

export function MetricsView(): JSX.Element {
  const { api, model } = useView();
  const version = useModelVersion(model);
  const all = model.metrics();
  const { charts, progress } = useMemo(() => chartSpecs(all), [all, all.length, version]);
  const firstData = useRef<number | null>(null);
  // Fetch plotly as soon as the tab opens, while the series are still loading.
  useEffect(() => { loadPlotly(api).catch(() => undefined); }, [api]);
  if (!charts.length && !progress.length) return <div class="cf-metrics cf-empty">no metrics recorded yet</div>;
  if (firstData.current === null) firstData.current = performance.now(); // the test's "draw time" starts here
  return <div class="cf-metrics" data-charts={charts.length} data-first-data-at={firstData.current.toFixed(1)}>
    {progress.length ? <div class="cf-progress-list">{progress.map((s) =>
      <ProgressBar key={`${s.execution_id}/${s.key}`} model={model} series={s} />)}</div> : null}
    <div class="cf-charts">
      {charts.map((spec) => <Chart key={spec.id} api={api} model={model} spec={spec} version={version} />)}
    </div>
  </div>;
}
