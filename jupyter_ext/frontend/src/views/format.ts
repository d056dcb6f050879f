// Small formatting helpers shared by the views.

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds == null || !isFinite(seconds) || seconds < 0) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds - m * 60)} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min`;
}

export function formatTime(epoch: number | null | undefined): string {
  if (epoch == null) return "";
  const d = new Date(epoch * 1000);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function formatDateTime(epoch: number | null | undefined): string {
  if (epoch == null) return "";
  const d = new Date(epoch * 1000);
  return `${d.toLocaleDateString()} ${formatTime(epoch)}`;
}

export function formatBytes(n: number | null | undefined): string {
  if (n == null || !isFinite(n)) return "";
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** "builtins.ValueError" -> "ValueError"; other qualified names stay whole. */
export function shortType(type: string): string {
  return type.startsWith("builtins.") ? type.slice("builtins.".length) : type;
}

/** "<run>:<n>:<attempt>" -> "<run>:<n>" */
export function stepOfExecution(executionId: string): string {
  const i = executionId.lastIndexOf(":");
  return i < 0 ? executionId : executionId.slice(0, i);
}

/** "<run>:<n>[:<attempt>]" -> "<run>" */
export function runOfId(id: string): string {
  const i = id.indexOf(":");
  return i < 0 ? id : id.slice(0, i);
}

export function attemptOf(executionId: string): number {
  const i = executionId.lastIndexOf(":");
  return Number(executionId.slice(i + 1)) || 1;
}

type Tags = Record<string, string[]>;

function tagsOf(value: unknown): Tags {
  const out: Tags = {};
  if (!value || typeof value !== "object" || Array.isArray(value)) return out;
  for (const [key, values] of Object.entries(value as Record<string, unknown>)) {
    out[key] = Array.isArray(values) ? values.map(String) : [];
  }
  return out;
}

/** The requires a step ran with: the run's under the step's own, key by key, a key with no
 * values removed (what the server matches workers against: orchestrator/matching.py). */
export function effectiveRequires(runRequires: unknown, stepRequires: unknown): Tags {
  const merged: Tags = { ...tagsOf(runRequires), ...tagsOf(stepRequires) };
  return Object.fromEntries(Object.entries(merged).filter(([, values]) => values.length > 0));
}

/** Tags as `coflux submit --requires` spells them: `gpu:A100|H100, region` (a key alone: any value). */
export function requiresText(requires: unknown): string {
  return Object.entries(tagsOf(requires)).filter(([, values]) => values.length > 0)
    .map(([key, values]) => values.length === 1 && values[0] === "true" ? key : `${key}:${values.join("|")}`)
    .join(", ");
}

/** A step's options as `coflux runs inspect` shows them: `requires gpu:A100, retries 2, delay 5 s`. */
export function optionsText(options: Record<string, unknown> | null | undefined): string {
  if (!options) return "";
  const parts: string[] = [];
  const seconds = (value: unknown) => `${Number(value)} s`;
  if (options.requires != null) parts.push(`requires ${requiresText(options.requires) || "none"}`);
  const memo = options.memo;
  if (memo === true) parts.push("memo");
  else if (memo === false) parts.push("memo off");
  else if (Array.isArray(memo)) parts.push(`memo on arguments ${memo.map((i) => Number(i) + 1).join(",")}`);
  const retries = options.retries as { limit?: number | null; backoff?: number[] } | null | undefined;
  if (retries) {
    const [low, high] = retries.backoff ?? [0, 0];
    parts.push(`retries ${retries.limit == null ? "unlimited" : retries.limit}` + (high ? ` (backoff ${low}-${high} s)` : ""));
  }
  if (options.delay) parts.push(`delay ${seconds(options.delay)}`);
  if (options.timeout) parts.push(`timeout ${seconds(options.timeout)}`);
  const cache = options.cache as { max_age?: number | null } | null | undefined;
  if (cache) parts.push("cache" + (cache.max_age != null ? ` ${seconds(cache.max_age)}` : ""));
  for (const name of ["defer", "recurrent", "wait"]) if (options[name]) parts.push(name);
  return parts.join(", ");
}

/** "no worker hosts it (the last left 14:02:07)": for a workflow a run would wait for, else "". */
export function unhostedText(workflow: { hosted?: boolean; host_left_at?: number | null }): string {
  if (workflow.hosted !== false) return "";
  return workflow.host_left_at != null
    ? `no worker hosts it (the last left ${formatDateTime(workflow.host_left_at)})`
    : "no worker hosts it";
}

/** "1 step", "3 steps": a count with its noun (an "s" for anything but one). */
export function plural(count: number, noun: string): string {
  return `${count.toLocaleString("en-US")} ${noun}${count === 1 ? "" : "s"}`;
}
