// A run's outcome (status, state, started_at, finished_at, duration, execution) is computed once,
// by the server (server/store/queries.py run_outcomes: the latest attempt of the root step,
// followed to its result). Views show it as it comes and never derive it from the steps; this
// module is the one place the front-end folds it: from a snapshot or a runs-list row, then from
// `run_result` events, the later feed position winning.
import type { RunOutcome } from "../api/types";

/** An outcome and the feed position it is from (-1: not known, e.g. a runs-list row). */
export interface HeldOutcome {
  outcome: RunOutcome;
  seq: number;
}

/** Just the outcome's fields of a snapshot, a runs-list row or a `run_result` event. */
export function outcomeOf(source: RunOutcome): RunOutcome {
  return {
    status: source.status, state: source.state, started_at: source.started_at,
    finished_at: source.finished_at ?? null, duration: source.duration ?? null, execution: source.execution ?? null,
  };
}

/** Fold a source of the run's outcome into what is held: a snapshot reflects at least its `seq`,
 * an event its own; something older than what is held changes nothing (the same object back). */
export function foldOutcome(held: HeldOutcome | null, source: RunOutcome, seq: number | undefined,
  kind: "snapshot" | "event"): HeldOutcome | null {
  if (typeof source.status !== "string") return held; // not an outcome (an older server's payload)
  const at = typeof seq === "number" ? seq : -1;
  if (held && at >= 0 && (at < held.seq || (at === held.seq && kind === "event"))) return held;
  return { outcome: outcomeOf(source), seq: Math.max(at, held?.seq ?? -1) };
}

/** How long the run took (its duration, once it has an outcome) or has taken so far (`now`,
 * epoch seconds, minus its start, while it runs). */
export function runDuration(outcome: RunOutcome | null | undefined, now: number): number | null {
  if (!outcome) return null;
  if (outcome.duration != null) return outcome.duration;
  return outcome.finished_at == null ? Math.max(0, now - outcome.started_at) : null;
}
