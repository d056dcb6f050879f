// Metrics at scale, pure: many series of one key (one per sibling step) summarised as a band
// (median between min and max, or chosen percentiles), all of them joined into one trace when
// shown each (one SVG path instead of 300), and round ticks for a declared MetricScale range.
// coflux/widgets.py `metrics_figure` follows the same rules and names.

/** From this many series of one key in a chart on, the key is drawn as a band. */
export const BAND_MIN = 5;

export type BandKind = "minmax" | "p10" | "p25";
export const BAND_KINDS: { id: BandKind; label: string }[] = [
  { id: "minmax", label: "min–max" }, { id: "p10", label: "10–90%" }, { id: "p25", label: "25–75%" },
];

export interface Band { x: number[]; lo: number[]; mid: number[]; hi: number[] }

/** Past this many distinct x values the band is computed over this many equal slices of x. */
const MAX_X = 400;

export function quantile(sorted: readonly number[], q: number): number {
  if (!sorted.length) return NaN;
  const at = (sorted.length - 1) * q;
  const low = Math.floor(at);
  const high = Math.ceil(at);
  return sorted[low] + (sorted[high] - sorted[low]) * (at - low);
}

/** The band of several series: at each x (or slice of x), the median and the two bounds. */
export function band(series: readonly { points: readonly [number, number][] }[], kind: BandKind = "minmax"): Band {
  const xs = new Set<number>();
  let minX = Infinity;
  let maxX = -Infinity;
  for (const s of series) for (const [x] of s.points) { xs.add(x); if (x < minX) minX = x; if (x > maxX) maxX = x; }
  const binned = xs.size > MAX_X;
  const slot = new Map<number, number>();
  const grid: number[] = binned ? Array.from({ length: MAX_X }, (_, i) => minX + ((i + 0.5) * (maxX - minX)) / MAX_X)
    : [...xs].sort((a, b) => a - b);
  if (!binned) grid.forEach((x, i) => slot.set(x, i));
  const ys: number[][] = grid.map(() => []);
  const width = (maxX - minX) / MAX_X || 1;
  for (const s of series) {
    for (const [x, y] of s.points) {
      if (!Number.isFinite(y)) continue;
      const i = binned ? Math.min(MAX_X - 1, Math.floor((x - minX) / width)) : slot.get(x)!;
      ys[i].push(y);
    }
  }
  const q = kind === "p10" ? 0.1 : kind === "p25" ? 0.25 : 0;
  const out: Band = { x: [], lo: [], mid: [], hi: [] };
  ys.forEach((values, i) => {
    if (!values.length) return;
    values.sort((a, b) => a - b);
    out.x.push(grid[i]);
    out.lo.push(quantile(values, q));
    out.mid.push(quantile(values, 0.5));
    out.hi.push(quantile(values, 1 - q));
  });
  return out;
}

/** Every series in one trace, a gap (null) between two, with each point's series name. */
export function joined(series: readonly { points: readonly [number, number][]; name: string }[]): {
  x: (number | null)[]; y: (number | null)[]; text: string[];
} {
  const x: (number | null)[] = [];
  const y: (number | null)[] = [];
  const text: string[] = [];
  for (const s of series) {
    if (x.length) { x.push(null); y.push(null); text.push(""); }
    for (const [px, py] of s.points) { x.push(px); y.push(py); text.push(s.name); }
  }
  return { x, y, text };
}

/** A round tick step for [lower, upper] with about `count` intervals: 1, 2, 2.5 or 5 x 10^k. */
export function niceStep(lower: number, upper: number, count = 5): number {
  const raw = Math.abs(upper - lower) / count;
  if (!(raw > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= raw - 1e-12) return m * power;
  return 10 * power;
}

/** The name of one series, the same in the view and in `metrics_figure()`: its key, and the
 * step it came from when the chart holds the key for several steps. */
export function seriesName(key: string, step: { target: string; number: number } | null, ambiguous: boolean,
  executionId = ""): string {
  if (!ambiguous) return key;
  return step ? `${key} (${step.target} #${step.number})` : `${key} (${executionId})`;
}

export function bandNames(key: string, count: number, kind: BandKind): { mid: string; range: string } {
  const label = BAND_KINDS.find((k) => k.id === kind)!.label;
  return { mid: `${key}: median of ${count} steps`, range: `${key}: ${label}` };
}
