// The notebook run view: an anywidget ESM module. It reads the widget's traits (run_id, api_base,
// token, part, studio_url, height), opens the server's API from the page and mounts the shared run
// view; it re-mounts when run_id or part change and cleans up when the output is removed.
import { createApi, type CofluxClient } from "../api/client";
import { mountRunView, offerOpenRun, type RunPart } from "../views/runview";

/** The part of anywidget's model this view uses. */
interface WidgetModel {
  get(name: string): unknown;
  on(event: string, callback: () => void): void;
  off(event: string, callback: () => void): void;
}

const DEFAULT_HEIGHT = 560; // px: a full view fits a notebook output without inner page scroll
const DEFAULT_PART_HEIGHT = 420;
const PARTS: RunPart[] = ["", "graph", "timeline", "logs", "metrics", "assets"];

function text(model: WidgetModel, name: string): string {
  const value = model.get(name);
  return typeof value === "string" ? value : "";
}

/** api_base: a path ("/coflux/") against this page's origin, or an absolute URL as it is. */
export function resolveApiBase(base: string, here: string = location.href): string {
  return new URL(base || "/coflux/", here).href;
}

function render({ model, el }: { model: WidgetModel; el: HTMLElement }): () => void {
  let api: CofluxClient | null = null;
  let unmount: (() => void) | null = null;
  let apiKey = "";
  const host = document.createElement("div");
  host.className = "cf-widget";
  el.appendChild(host);

  const mount = () => {
    unmount?.();
    unmount = null;
    const runId = text(model, "run_id");
    const partName = text(model, "part") as RunPart;
    const part = PARTS.includes(partName) ? partName : "";
    const height = Number(model.get("height")) || (part ? DEFAULT_PART_HEIGHT : DEFAULT_HEIGHT);
    host.style.height = `${height}px`;
    if (!runId) {
      host.textContent = "no run to show";
      return;
    }
    host.textContent = "";
    const base = resolveApiBase(text(model, "api_base"));
    const token = text(model, "token");
    if (!api || apiKey !== `${base} ${token}`) {
      api?.close();
      api = createApi({ base, token: token || undefined });
      apiKey = `${base} ${token}`;
    }
    const studioUrl = text(model, "studio_url");
    unmount = mountRunView(host, api, runId, {
      part, studioUrl: studioUrl || undefined,
      // A child run: a Lab tab when the Coflux extension is there, else Studio's page.
      onOpenRun: (id) => {
        if (offerOpenRun(host, id) || !studioUrl) return;
        window.open(new URL(`#/runs/${id}`, new URL(studioUrl, location.href)).href, "_blank");
      },
    });
  };
  const events = ["change:run_id", "change:part", "change:api_base", "change:token", "change:height", "change:studio_url"];
  for (const event of events) model.on(event, mount);
  mount();
  return () => {
    for (const event of events) model.off(event, mount);
    unmount?.();
    unmount = null;
    api?.close();
    api = null;
    host.remove();
  };
}

export default { render };
