// The run view shared by Studio's run page, the notebook widget and the Lab run tab: a header
// (status, duration, connection, warning, actions), tabs Graph / Timeline / Logs / Metrics /
// Assets, and the step panel beside (or, when narrow, below). `part` shows one part alone.
import "./theme.css";
import "./views.css";
import type { JSX } from "preact";
import { render } from "preact";
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { CofluxApi, RunModel } from "../store/types";
import { AssetsView } from "./assets";
import { ViewContext, useModelVersion, useRunNow, type ViewContextValue } from "./context";
import { formatDuration, plural } from "./format";
import { GraphView } from "./graph";
import { LogsView } from "./logs";
import { MetricsView } from "./metrics";
import { PendingPrompts } from "./prompts";
import { runDuration } from "../store/outcome";
import { isActive, statusLook } from "./status";
import { HourglassIcon, RESUMABLE, StepPanel } from "./steppanel";
import { TimelineView } from "./timeline";

export type RunPart = "" | "graph" | "timeline" | "logs" | "metrics" | "assets";

export interface RunViewOptions {
  part?: RunPart;
  studioUrl?: string;
  onOpenRun?: (runId: string) => void;
  selectedStep?: string;
  onSelectStep?: (stepId: string | null) => void;
}

const TABS: { id: Exclude<RunPart, "">; label: string }[] = [
  { id: "graph", label: "Graph" }, { id: "timeline", label: "Timeline" }, { id: "logs", label: "Logs" },
  { id: "metrics", label: "Metrics" }, { id: "assets", label: "Assets" },
];

function PartView({ part }: { part: Exclude<RunPart, ""> }): JSX.Element {
  switch (part) {
    case "graph": return <GraphView />;
    case "timeline": return <TimelineView />;
    case "logs": return <LogsView />;
    case "metrics": return <MetricsView />;
    case "assets": return <AssetsView />;
  }
}

/** Ask the page to open a run itself: the JupyterLab extension answers the `coflux:open-run`
 * event (it opens a Lab tab and cancels the event). True when something handled it. */
export function offerOpenRun(from: Element, runId: string, stepId?: string): boolean {
  return !from.dispatchEvent(new CustomEvent("coflux:open-run", {
    bubbles: true, cancelable: true, detail: { runId, stepId },
  }));
}

/** "lost contact with the server since 14:02:07": said while out of contact, with the moment. */
export function LostContact({ model }: { model: RunModel }): JSX.Element | null {
  if (model.connected) return null;
  const since = model.lostAt != null ? new Date(model.lostAt * 1000).toLocaleTimeString() : "";
  return <span class="cf-connection cf-tone-warn" role="status" data-lost-at={model.lostAt ?? ""}>
    ⚠ lost contact with the server{since ? ` since ${since}` : ""} (shown as of then), reconnecting…
  </span>;
}

function Header({ model, api, studioUrl }: { model: RunModel; api: CofluxApi; studioUrl?: string }): JSX.Element {
  const active = isActive(model.status);
  const now = useRunNow(model, active);
  const offline = !model.connected;
  // The server says "running" for any unfinished run; one whose root step has not started waits.
  const shown = model.status === "running" && model.waiting ? "pending" : model.status;
  const look = statusLook(shown);
  const first = model.steps()[0];
  const [message, setMessage] = useState("");
  const resume = async () => {
    if (!first) return;
    setMessage("resuming…");
    try {
      const r = await api.resume(first.id);
      setMessage(`resumed as ${r.execution}`);
    } catch (e) { setMessage(`resume failed: ${e instanceof Error ? e.message : String(e)}`); }
  };
  const cancel = async () => {
    if (!first) return;
    setMessage("cancelling…");
    try { await api.cancel(first.latest.id); setMessage(""); } catch (e) { setMessage(`cancel failed: ${e instanceof Error ? e.message : String(e)}`); }
  };
  const snap = model.snapshot;
  const workflow = snap ? `${snap.module}/${snap.target}` : first ? `${first.module}/${first.target}` : "";
  return <header class="cf-run-header">
    <span class={`cf-badge cf-run-status cf-tone-${look.tone}${shown === "running" ? " cf-badge-live" : ""}`} data-status={shown}>
      <span class="cf-status-icon" aria-hidden="true">{look.icon}</span> <span class="cf-status-text">{look.label}</span>
    </span>
    <span class="cf-run-title"><strong>{workflow}</strong> <span class="cf-muted cf-run-id">{model.runId}</span></span>
    <span class="cf-muted cf-run-duration">{formatDuration(runDuration(model.outcome, now))}</span>
    <span class="cf-muted cf-run-steps">{plural(model.steps().length, "step")}</span>
    <LostContact model={model} />
    {!offline && model.warning ? <span class="cf-run-warning cf-tone-warn" role="status" title={model.warning}>⚠ {model.warning}</span> : null}
    {!offline && !model.warning && model.waiting ? <span class="cf-run-waiting cf-tone-wait" role="status" title={model.waiting}>
      <HourglassIcon /> {model.waiting}</span> : null}
    <span class="cf-spacer" />
    {message ? <span class="cf-muted" role="status">{message}</span> : null}
    {active && first ? <button type="button" class="cf-button cf-danger cf-cancel-run" onClick={cancel} disabled={offline}
      title={offline ? "no contact with the server" : undefined}>⊘ Cancel run</button> : null}
    {!active && first && RESUMABLE.has(model.status) ?
      <button type="button" class="cf-button cf-resume" onClick={resume} disabled={offline}
        title={offline ? "no contact with the server" : "run the workflow again, reusing every call that already succeeded"}>
        ⏵ Resume from failure</button> : null}
    {studioUrl ? <a class="cf-button cf-open-studio" href={studioUrl} target="_blank" rel="noopener"
      onClick={(event) => { if (offerOpenRun(event.currentTarget, model.runId)) event.preventDefault(); }}>Open in Studio ↗</a> : null}
  </header>;
}

function RunView({ api, model, options }: { api: CofluxApi; model: RunModel; options: RunViewOptions }): JSX.Element {
  useModelVersion(model);
  const [tab, setTab] = useState<Exclude<RunPart, "">>("graph");
  const [selected, setSelected] = useState<string | null>(options.selectedStep ?? null);
  const onSelect = options.onSelectStep;
  useEffect(() => { setSelected(options.selectedStep ?? null); }, [options.selectedStep]);
  const selectStep = useCallback((stepId: string | null) => {
    setSelected(stepId);
    onSelect?.(stepId);
  }, [onSelect]);
  const ctx: ViewContextValue = useMemo(() => ({
    api, model, selectedStep: selected, selectStep, openRun: options.onOpenRun, studioUrl: options.studioUrl,
  }), [api, model, selected, selectStep, options.onOpenRun, options.studioUrl]);
  const tabRefs = useRef<(HTMLButtonElement | null)[]>([]);
  const onTabKey = (event: KeyboardEvent, i: number) => {
    const next = event.key === "ArrowRight" ? (i + 1) % TABS.length : event.key === "ArrowLeft" ? (i + TABS.length - 1) % TABS.length : -1;
    if (next < 0) return;
    event.preventDefault();
    setTab(TABS[next].id);
    tabRefs.current[next]?.focus();
  };
  const part = options.part || "";
  const panel = selected ? <StepPanel stepId={selected} onClose={() => selectStep(null)} /> : null;
  const loading = !model.snapshot && model.steps().length === 0;
  // A run the server does not know: say only that (no status, no connection state, no tabs).
  if (model.error && loading) {
    return <div class="cf-root cf-runview cf-runview-missing" data-run={model.runId}>
      <div class="cf-empty cf-error-text" role="alert">{model.error}</div>
    </div>;
  }

  return <ViewContext.Provider value={ctx}>
    <div class={`cf-root cf-runview${part ? ` cf-part cf-part-${part}` : ""}${model.connected ? "" : " cf-runview-offline"}`}
      data-run={model.runId} data-status={model.status}>
      {part ? <LostContact model={model} /> : <Header model={model} api={api} studioUrl={options.studioUrl} />}
      {/* a selected step's prompts are in its panel: not twice */}
      {!part ? <PendingPrompts api={api} inputs={model.inputs().filter((i) => i.step !== selected)} /> : null}
      {!part ? <div class="cf-tabs" role="tablist" aria-label="run views">
        {TABS.map((t, i) => <button key={t.id} ref={(el) => { tabRefs.current[i] = el; }} type="button" role="tab"
          class={`cf-tab${t.id === tab ? " cf-active" : ""}`} aria-selected={t.id === tab} tabIndex={t.id === tab ? 0 : -1}
          data-tab={t.id} onClick={() => setTab(t.id)} onKeyDown={(e) => onTabKey(e, i)}>{t.label}</button>)}
      </div> : null}
      <div class="cf-run-body">
        <div class="cf-run-main" role={part ? undefined : "tabpanel"}>
          {model.error && !model.steps().length ? <div class="cf-empty cf-error-text" role="alert">{model.error}</div> :
            loading ? <div class="cf-empty">loading the run…</div> : <PartView part={part || tab} />}
        </div>
        {panel}
      </div>
    </div>
  </ViewContext.Provider>;
}

/** Render the live view of one run into `el`; returns the unmount (which also closes the feed). */
export function mountRunView(el: HTMLElement, api: CofluxApi, runId: string, options: RunViewOptions = {}): () => void {
  const model = api.openRun(runId);
  render(<RunView api={api} model={model} options={options} />, el);
  let mounted = true;
  return () => {
    if (!mounted) return;
    mounted = false;
    render(null, el);
    model.dispose();
  };
}
