// The run view of a notebook output, rendered from the notebook file alone: a MIME renderer for
// `application/vnd.coflux.run+json` (coflux/run_output.py writes it beside the widget).
//
// Why a MIME renderer and not saved widget state: the view already talks to the server from the
// browser, so all it needs is the run id and the server's path, which this MIME type stores in
// the output itself. Saved widget state would depend on the user turning on the widget
// manager's "save widget state" setting, would copy the whole view module (anywidget's `_esm`,
// hundreds of KB) into the notebook once per run shown, and would still show "model not found"
// for any output saved without it. The renderer is ranked above the widget's (-10), so Lab shows
// it whether or not a kernel (and so a widget model) exists; elsewhere (VS Code, Colab) the
// widget still renders, and nbconvert, nbviewer and GitHub show the static fallback.
//
// The fallback (text/html, text/plain) holds the status as of when it was written; while the view
// is open, a change of the run's status rewrites it, so the notebook saves the latest status.
import type { IRenderMime } from "@jupyterlab/rendermime-interfaces";
import { Widget } from "@lumino/widgets";
import type { CofluxClient } from "../../src/api/client";
import type { RunModel } from "../../src/store/types";
import { formatDuration } from "../../src/views/format";
import { mountRunView, offerOpenRun, type RunPart } from "../../src/views/runview";

export const RUN_MIME = "application/vnd.coflux.run+json";
const PARTS: RunPart[] = ["", "graph", "timeline", "logs", "metrics", "assets"];
const DEFAULT_HEIGHT = 560; // as the widget (src/widget/index.tsx)
const DEFAULT_PART_HEIGHT = 420;

interface RunOutputData {
  run_id: string;
  api_base?: string;
  studio_url?: string;
  part?: string;
  height?: number;
  workflow?: string;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function asOf(date: Date = new Date()): string {
  return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** The static text/plain and text/html of a run output (as coflux/run_output.py writes them). */
export function fallback(runId: string, workflow: string, status: string, duration: number | null,
  studioUrl: string, when: string): { "text/plain": string; "text/html": string } {
  const took = duration != null ? formatDuration(duration) : "";
  const plain = `coflux run ${runId} ${workflow}: ${status} as of ${when}${took ? `, took ${took}` : ""}` +
    (studioUrl ? `\nStudio: ${studioUrl}` : "");
  const link = studioUrl ? ` · <a href="${escape(studioUrl)}" target="_blank">open in Studio</a>` : "";
  const html = `<div class="coflux-run-fallback" data-run="${escape(runId)}"><strong>${escape(workflow)}</strong> ` +
    `<code>${escape(runId)}</code>: <span class="coflux-run-fallback-status">${escape(status)}</span> ` +
    `<small>as of ${escape(when)}</small>${took ? ` · took ${escape(took)}` : ""}${link}</div>`;
  return { "text/plain": plain, "text/html": html };
}

function statusIn(plain: unknown): string {
  const match = typeof plain === "string" ? /: (\S+) as of /.exec(plain) : null;
  return match ? match[1] : "";
}

export class RunOutput extends Widget implements IRenderMime.IRenderer {
  private key = "";
  private unmount: (() => void) | null = null;
  private watch: { model: RunModel; off: () => void } | null = null;
  private mimeModel: IRenderMime.IMimeModel | null = null;
  private readonly host: HTMLDivElement;

  constructor(private readonly api: (base: string) => CofluxClient) {
    super();
    this.addClass("coflux-run-output");
    this.host = document.createElement("div");
    this.host.className = "cf-widget";
    this.node.appendChild(this.host);
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this.mimeModel = model;
    const data = model.data[RUN_MIME] as unknown as RunOutputData | undefined;
    const runId = typeof data?.run_id === "string" ? data.run_id : "";
    const part = (PARTS.includes(data?.part as RunPart) ? data?.part : "") as RunPart;
    const key = `${runId} ${part} ${data?.api_base ?? ""}`;
    if (key === this.key) return Promise.resolve(); // our own fallback rewrite: nothing to re-mount
    this.key = key;
    this.stop();
    this.host.style.height = `${Number(data?.height) || (part ? DEFAULT_PART_HEIGHT : DEFAULT_HEIGHT)}px`;
    if (!runId) {
      this.host.textContent = "no run to show";
      return Promise.resolve();
    }
    this.host.textContent = "";
    const api = this.api(data?.api_base ?? "");
    const studioUrl = data?.studio_url ? new URL(data.studio_url, location.href).href : api.url(`#/runs/${runId}`);
    this.unmount = mountRunView(this.host, api, runId, {
      part, studioUrl,
      onOpenRun: (id) => { if (!offerOpenRun(this.host, id)) window.open(api.url(`#/runs/${id}`), "_blank"); },
    });
    const run = api.openRun(runId);
    // The saved link stays as the kernel wrote it (a path of this server), not this page's address.
    const savedLink = data?.studio_url || studioUrl;
    this.watch = { model: run, off: run.onChange(() => this.refreshFallback(run, data?.workflow ?? "", savedLink)) };
    return Promise.resolve();
  }

  /** Keep the saved fallback's status current: rewritten only when the status it states changes
   * (not as the clock ticks), and only with a status heard from the server. */
  private refreshFallback(run: RunModel, workflow: string, studioUrl: string): void {
    const model = this.mimeModel;
    if (!model || !run.connected || !run.outcome) return;
    const status = run.status;
    const saved = model.data["text/plain"];
    const known = run.outcome.duration == null || (typeof saved === "string" && saved.includes(", took "));
    if (statusIn(saved) === status && known) return;
    const snap = run.snapshot;
    const name = workflow || (snap ? `${snap.module}/${snap.target}` : "");
    const text = fallback(run.runId, name, status, run.outcome.duration ?? null, studioUrl, asOf());
    model.setData({ data: { ...model.data, ...text } });
  }

  private stop(): void {
    this.watch?.off();
    this.watch?.model.dispose();
    this.watch = null;
    this.unmount?.();
    this.unmount = null;
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.stop();
    super.dispose();
  }
}

/** The renderer factory: one client per server path for the whole page (shared feed). */
export function runRendererFactory(clientFor: (base: string) => CofluxClient): IRenderMime.IRendererFactory {
  return {
    safe: true, // it shows a run from the user's own server; actions (Cancel) need a click
    mimeTypes: [RUN_MIME],
    defaultRank: -20, // above the widget's -10: live with or without a kernel
    createRenderer: () => new RunOutput(clientFor),
  };
}
