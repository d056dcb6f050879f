// Metrics: one plotly chart per MetricGroup (its x axis and units), series of one MetricScale
// sharing a y axis, each ungrouped metric a chart of its own, progress metrics as progress bars.
// Live: new points are appended with Plotly.extendTraces (at most once a frame); a new series
// redraws its chart with Plotly.react.
import type { JSX } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { useThemeVersion } from "./themewatch";
import type { MetricSeries } from "../api/types";
import type { CofluxApi, RunModel } from "../store/types";
import { useModelVersion, useView } from "./context";
import { stepOfExecution } from "./format";
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

function traceName(model: RunModel, s: MetricSeries, ambiguous: boolean): string {
  if (!ambiguous) return s.key;
  const step = model.step(stepOfExecution(s.execution_id));
  return step ? `${s.key} (${step.target} #${step.number})` : `${s.key} (${s.execution_id})`;
}

function figure(model: RunModel, spec: ChartSpec, el: Element) {
  const keys = new Map<string, number>();
  for (const s of spec.series) keys.set(s.key, (keys.get(s.key) ?? 0) + 1);
  const fg = cssVar(el, "--cf-fg", "#222");
  const grid = cssVar(el, "--cf-border-soft", "#ddd");
  const data = spec.series.map((s) => {
    const axis = spec.axes.get(scaleName(s)) ?? 1;
    const points = decimate(s.points);
    return {
      type: "scatter" as const, mode: (s.points.length > 200 ? "lines" : "lines+markers") as "lines" | "lines+markers",
      name: traceName(model, s, (keys.get(s.key) ?? 0) > 1),
      x: points.map((p) => p[0]), y: points.map((p) => p[1]),
      yaxis: axis === 1 ? "y" : `y${axis}`, marker: { size: 4 },
    };
  });
  const layout: Record<string, unknown> = {
    title: { text: spec.title, font: { size: 13 } }, autosize: true, height: 260,
    margin: { l: 56, r: 56 + Math.max(0, spec.axes.size - 2) * 48, t: 34, b: 42 },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { color: fg, size: 11 },
    showlegend: spec.series.length > 1, legend: { orientation: "h", y: -0.25 },
    xaxis: { title: { text: spec.xTitle }, gridcolor: grid, zerolinecolor: grid,
      ...(spec.xRange[0] != null && spec.xRange[1] != null ? { range: spec.xRange } : {}) },
  };
  for (const [name, n] of spec.axes) {
    const sample = spec.series.find((s) => scaleName(s) === name);
    const scale = sample?.scale;
    const title = name ? `${name}${scale?.units ? ` (${scale.units})` : ""}` : (spec.axes.size > 1 ? "value" : "");
    const axis: Record<string, unknown> = { title: { text: title }, gridcolor: grid, zerolinecolor: grid };
    if (scale?.lower != null && scale?.upper != null) axis.range = [scale.lower, scale.upper];
    if (n > 1) {
      Object.assign(axis, { overlaying: "y", side: "right", showgrid: false });
      if (n > 2) Object.assign(axis, { anchor: "free", position: 1 - (n - 2) * 0.06, autoshift: true });
    }
    layout[n === 1 ? "yaxis" : `yaxis${n}`] = axis;
  }
  return { data, layout };
}

function Chart({ api, model, spec, version }: { api: CofluxApi; model: RunModel; spec: ChartSpec; version: number }): JSX.Element {
  const ref = useRef<HTMLDivElement>(null);
  const [error, setError] = useState("");
  // what is on screen: the series, their point counts, and the counts when last drawn whole
  const drawn = useRef<{ traces: string; counts: number[]; base: number[] } | null>(null);
  const plotly = useRef<PlotlyModule | null>(null);
  const frame = useRef(0);

  const draw = () => {
    frame.current = 0;
    const el = ref.current;
    const P = plotly.current;
    if (!el || !P) return;
    const traces = spec.series.map((s) => `${s.execution_id}/${s.key}`).join("|") + `#${spec.axes.size}`;
    const counts = spec.series.map((s) => s.points.length);
    const before = drawn.current;
    const started = performance.now();
    // Appending is cheap, but a decimated series is drawn afresh once it has grown by a quarter.
    const regrow = before !== null && counts.some((n, i) => n > DECIMATE_BUCKETS * 2 && n > (before.base[i] ?? 0) * 1.25);
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
      const { data, layout } = figure(model, spec, el);
      const config = { responsive: true, displaylogo: false, displayModeBar: "hover" as const };
      if (before) void P.react(el, data as never, layout as never, config);
      else void P.newPlot(el, data as never, layout as never, config);
    }
    const appended = before !== null && before.traces === traces && !regrow;
    drawn.current = { traces, counts, base: appended ? before.base : counts };
    el.setAttribute("data-drawn", String(counts.reduce((a, b) => a + b, 0)));
    el.setAttribute("data-draw-ms", (performance.now() - started).toFixed(1));
    el.setAttribute("data-drawn-at", performance.now().toFixed(1));
  };

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
  useEffect(() => {
    if (plotly.current && !frame.current) frame.current = requestAnimationFrame(draw);
  }, [version]);
  const theme = useThemeVersion();
  useEffect(() => {
    if (!plotly.current) return;
    // The colours are baked into the figure: draw it whole again with the new theme's.
    if (drawn.current) drawn.current = { ...drawn.current, traces: "" };
    if (!frame.current) frame.current = requestAnimationFrame(draw);
  }, [theme]);

  return <figure class="cf-chart-box" aria-label={`chart ${spec.title}`}>
    {error ? <div class="cf-error-text">{error}</div> : null}
    <div class="cf-chart" ref={ref} data-chart={spec.id} />
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
