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
