// How views outside this plugin (the notebook run view's "open in Studio") ask Lab to open a run:
// they dispatch a bubbling, cancelable DOM event; the plugin opens a Lab tab and calls
// preventDefault(), so `dispatchEvent` returns false and the view skips its fallback (a browser
// tab with the Studio page). Without this plugin (Notebook 7, a plain page) nobody cancels it.
export const OPEN_RUN_EVENT = "coflux:open-run";

export interface OpenRunDetail {
  runId: string;
  stepId?: string;
}

export function isOpenRunDetail(value: unknown): value is OpenRunDetail {
  const detail = value as OpenRunDetail | null;
  return typeof detail?.runId === "string" && detail.runId !== "";
}
