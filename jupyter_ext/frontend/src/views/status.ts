// How a status is shown: always an icon and a text label, with a colour class on top (never the
// colour alone).
import { ExecutionState, STATUS_RANK } from "../api/protocol";

export interface StatusLook {
  icon: string;
  label: string;
  tone: "ok" | "bad" | "warn" | "run" | "wait" | "other";
}

const LOOKS: Record<string, StatusLook> = {
  pending: { icon: "○", label: "pending", tone: "wait" },
  assigned: { icon: "◔", label: "assigned", tone: "wait" },
  running: { icon: "◐", label: "running", tone: "run" },
  value: { icon: "✓", label: "value", tone: "ok" },
  error: { icon: "✗", label: "error", tone: "bad" },
  crashed: { icon: "✗", label: "crashed", tone: "bad" },
  timeout: { icon: "⏱", label: "timeout", tone: "bad" },
  abandoned: { icon: "⚠", label: "abandoned", tone: "warn" },
  cancelled: { icon: "⊘", label: "cancelled", tone: "warn" },
  suspended: { icon: "⏸", label: "suspended", tone: "other" },
  deferred: { icon: "↷", label: "deferred", tone: "other" },
  cached: { icon: "⟲", label: "cached", tone: "other" },
  spawned: { icon: "↗", label: "spawned", tone: "other" },
  recurred: { icon: "↻", label: "recurred", tone: "other" },
};

export function statusLook(status: string): StatusLook {
  return LOOKS[status] ?? { icon: "•", label: status || "unknown", tone: "wait" };
}

/** Not finished: pending, assigned or running (a status the protocol ranks below any result). */
export function isActive(status: string): boolean {
  return STATUS_RANK[status] !== undefined;
}

/** An attempt's status: the server's `state` (its result kind once it has one), kept current by
 * the fold (store/fold.ts), which moves it only forward. */
export function executionStatus(e: { state?: string }): string {
  return e.state || ExecutionState.PENDING;
}

/** Severity for summarising several statuses (a group node shows its worst). */
export function severity(status: string): number {
  switch (statusLook(status).tone) {
    case "bad": return 5;
    case "warn": return 4;
    case "run": return 3;
    case "wait": return 2;
    case "other": return 1;
    default: return 0;
  }
}
