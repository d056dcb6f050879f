// plotly.js is a separate bundle (static/plotly.js), loaded on first use: a view without charts
// never downloads it. One promise per URL, so every chart of a page shares the one module.
import type * as PlotlyTypes from "plotly.js";
import type { CofluxApi } from "../store/types";

export type PlotlyModule = typeof PlotlyTypes;

const loading = new Map<string, Promise<PlotlyModule>>();

/** The URL of static/plotly.js on the api's server (absolute, so import() does not resolve it
 * against this module's own URL); with the api's token when it has one. */
export function plotlyUrl(api: CofluxApi): string {
  const url = new URL(api.base + "static/plotly.js", location.href);
  const token = (api as { token?: string }).token;
  if (token) url.searchParams.set("token", token);
  return url.href;
}

type Loaded = { default?: PlotlyModule } & PlotlyModule;

/** import() of the bundle's text as a blob: for a module that itself came from a blob: or data:
 * URL (anywidget loads the notebook view so), whose imports carry no Referer, which Jupyter's
 * file handlers refuse; fetch() sends the page's Referer and the page's cookies. */
async function importViaFetch(url: string): Promise<Loaded> {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const blob = new Blob([await response.text()], { type: "text/javascript" });
  const blobUrl = URL.createObjectURL(blob);
  try {
    return await (import(/* @vite-ignore */ blobUrl) as Promise<Loaded>);
  } finally {
    URL.revokeObjectURL(blobUrl);
  }
}

export function loadPlotly(api: CofluxApi): Promise<PlotlyModule> {
  const url = plotlyUrl(api);
  let promise = loading.get(url);
  if (!promise) {
    const here = import.meta.url;
    const load = here.startsWith("blob:") || here.startsWith("data:") ? importViaFetch(url)
      : (import(/* @vite-ignore */ url) as Promise<Loaded>);
    promise = load.then((mod) => (mod.default ?? mod) as PlotlyModule);
    promise.catch(() => loading.delete(url)); // a failed load may be retried later
    loading.set(url, promise);
  }
  return promise;
}
