// What every part of a run view shares: the live model, the API, and the navigation callbacks.
import { createContext } from "preact";
import { useContext, useEffect, useReducer } from "preact/hooks";
import type { CofluxApi, RunModel } from "../store/types";

export interface ViewContextValue {
  api: CofluxApi;
  model: RunModel;
  selectedStep: string | null;
  selectStep: (stepId: string | null) => void;
  openRun?: (runId: string) => void;
  studioUrl?: string;
}

export const ViewContext = createContext<ViewContextValue | null>(null);

export function useView(): ViewContextValue {
  const value = useContext(ViewContext);
  if (value === null) throw new Error("a run view part is rendered outside mountRunView");
  return value;
}

/** Re-render on every change of the model (the model calls at most once per frame). Returns
 * the model's version, for memo keys. */
export function useModelVersion(model: RunModel): number {
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => model.onChange(() => bump(0)), [model]);
  return model.version;
}

/** A clock that ticks every `ms` while `active` (durations and bars of running work grow). */
export function useNow(active: boolean, ms = 1000): number {
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    if (!active) return undefined;
    const timer = setInterval(() => bump(0), ms);
    return () => clearInterval(timer);
  }, [active, ms]);
  return Date.now() / 1000;
}

/** The clock of a run's view: ticking while `active` and in contact with the server; while
 * out of contact, frozen at the moment contact was lost (what is known stops there). */
export function useRunNow(model: RunModel, active: boolean, ms = 1000): number {
  const lostAt = model.lostAt ?? null;
  const now = useNow(active && lostAt === null, ms);
  return lostAt ?? now;
}
