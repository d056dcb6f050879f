// The Lab side panel: workflows (with the run dialog) and the live list of recent runs. A run
// opens in a main-area tab (openRun); everything else is the shared client and views.
import { render } from "preact";
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { CofluxClient } from "../../src/api/client";
import type { InputDetail, RunSummary, WorkflowInfo } from "../../src/api/types";
import { formatDateTime, unhostedText } from "../../src/views/format";
import { InputsList, PromptCard } from "../../src/views/prompts";
import { statusLook } from "../../src/views/status";
import { RunForm } from "./runform";

const RECENT_RUNS = 30;
const REFRESH_DELAY_MS = 150; // coalesce a burst of feed events into one reload

/** When a run started, short: the time today, else the date (the full stamp is in the tooltip). */
function when(epoch: number): string {
  const d = new Date(epoch * 1000);
  if (d.toDateString() !== new Date().toDateString()) return d.toLocaleDateString();
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export interface PanelOptions {
  api: CofluxClient;
  openRun: (runId: string) => void;
  studioUrl: string;
  /** told the number of pending inputs (the panel's icon shows it as a badge) */
  onPendingInputs?: (count: number) => void;
}

export function mountPanel(el: HTMLElement, options: PanelOptions): () => void {
  render(<Panel {...options} />, el);
  return () => render(null, el);
}

/** Load now, and again (debounced) whenever the feed topic reports something. */
function useLive<T>(api: CofluxClient, topic: "runs" | "workers", load: () => Promise<T>):
  { data: T | null; error: string; reload: () => void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState("");
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const reload = useCallback(() => {
    load().then((value) => { setData(value); setError(""); },
      (e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [load]);
  useEffect(() => {
    reload();
    const unsubscribe = api.subscribe(topic, () => {
      if (timer.current) clearTimeout(timer.current);
      timer.current = setTimeout(reload, REFRESH_DELAY_MS);
    });
    return () => {
      unsubscribe();
      if (timer.current) clearTimeout(timer.current);
    };
  }, [api, topic, reload]);
  return { data, error, reload };
}

function Panel({ api, openRun, studioUrl, onPendingInputs }: PanelOptions) {
  const [connected, setConnected] = useState(api.connected);
  useEffect(() => api.onConnection(setConnected), [api]);
  return (
    <div class="coflux-lab-panel-body">
      <header class="coflux-lab-header">
        <h2>Coflux</h2>
        <span class={`coflux-lab-conn cf-tone-${connected ? "ok" : "warn"}`} title="the server's live feed">
          {connected ? "● live" : "○ connecting…"}
        </span>
        <a class="cf-button coflux-lab-studio-link" title="Studio as a web page, in a browser tab" href={studioUrl} target="_blank" rel="noopener">Studio ↗</a>
      </header>
      <PendingInputs api={api} onCount={onPendingInputs} />
      <Workflows api={api} openRun={openRun} />
      <RecentRuns api={api} openRun={openRun} />
      <Pools api={api} studioUrl={studioUrl} />
    </div>
  );
}

/** Prompts of every run that wait for an answer (a run started elsewhere too): open one to see
 * its form here. */
function PendingInputs({ api, onCount }: { api: CofluxClient; onCount?: (count: number) => void }) {
  const load = useCallback(() => api.get<{ inputs: InputDetail[] }>("api/inputs").then((r) => r.inputs), [api]);
  const { data, error, reload } = useLive(api, "runs", load);
  const [open, setOpen] = useState<string | null>(null);
  const inputs = data ?? [];
  useEffect(() => { onCount?.(inputs.length); }, [inputs.length, onCount]);
  return (
    <section class="coflux-lab-section coflux-lab-inputs" aria-label="Inputs">
      <h3>Inputs {inputs.length ? <span class="cf-count-badge">{inputs.length}</span> : null}</h3>
      {error && <p class="coflux-lab-error" role="alert">{error}</p>}
      <InputsList compact inputs={inputs} now={Date.now() / 1000} onOpen={(i) => setOpen(open === i.id ? null : i.id)} />
      {open && <PromptCard key={open} api={api} inputId={open} onDone={() => { setOpen(null); reload(); }} />}
    </section>
  );
}

function Workflows({ api, openRun }: { api: CofluxClient; openRun: (runId: string) => void }) {
  // Workflows appear when a worker registers them: reload on worker events.
  const load = useCallback(() => api.get<{ workflows: WorkflowInfo[] }>("api/workflows")
    .then((r) => r.workflows), [api]);
  const { data, error } = useLive(api, "workers", load);
  const [open, setOpen] = useState<string | null>(null);
  const modules = useMemo(() => {
    const byModule = new Map<string, WorkflowInfo[]>();
    for (const w of data ?? []) byModule.set(w.module, [...(byModule.get(w.module) ?? []), w]);
    return [...byModule.entries()].sort(([a], [b]) => a.localeCompare(b));
  }, [data]);
  return (
    <section class="coflux-lab-section coflux-lab-workflows" aria-label="Workflows">
      <h3>Workflows</h3>
      {error && <p class="coflux-lab-error" role="alert">{error}</p>}
      {data && data.length === 0 && (
        <p class="coflux-lab-empty">No workflows yet: start a worker (<code>coflux worker module</code>)
          or define one in a notebook.</p>
      )}
      {modules.map(([module, workflows]) => (
        <div class="coflux-lab-module" key={module}>
          <div class="coflux-lab-module-name">{module}</div>
          <ul>
            {workflows.map((w) => {
              const key = `${w.module}/${w.name}`;
              return (
                <li class="coflux-lab-workflow" key={key} data-workflow={key}>
                  <div class="coflux-lab-workflow-row">
                    <span class="coflux-lab-workflow-name">{w.name}</span>
                    <button type="button" class="cf-button" aria-expanded={open === key}
                      onClick={() => setOpen(open === key ? null : key)}>Run…</button>
                  </div>
                  {unhostedText(w) ? <div class="coflux-lab-unhosted cf-unhosted cf-tone-warn" role="note">⚠ {unhostedText(w)}</div> : null}
                  {w.instruction && <div class="coflux-lab-doc">{w.instruction.trim().split("\n")[0]}</div>}
                  {open === key && (
                    <RunForm api={api} workflow={w} onCancel={() => setOpen(null)}
                      onSubmitted={(runId) => { setOpen(null); openRun(runId); }} />
                  )}
                </li>
              );
            })}
          </ul>
        </div>
      ))}
    </section>
  );
}

function RecentRuns({ api, openRun }: { api: CofluxClient; openRun: (runId: string) => void }) {
  const load = useCallback(() => api.get<{ runs: RunSummary[] }>("api/runs", { limit: RECENT_RUNS })
    .then((r) => r.runs), [api]);
  const { data, error } = useLive(api, "runs", load);
  const list = useRef<HTMLUListElement>(null);

  // Arrow keys move between runs, Home/End jump, Enter (or a click) opens one.
  const onKeyDown = (event: KeyboardEvent) => {
    const items = [...(list.current?.querySelectorAll<HTMLElement>("li[data-run]") ?? [])];
    const at = items.indexOf(document.activeElement as HTMLElement);
    const move = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: items.length - 1 }[event.key];
    if (move !== undefined && items.length) {
      event.preventDefault();
      items[Math.max(0, Math.min(items.length - 1, move))].focus();
    } else if (event.key === "Enter" && at >= 0) {
      event.preventDefault();
      openRun(items[at].dataset.run as string);
    }
  };

  return (
    <section class="coflux-lab-section coflux-lab-runs" aria-label="Recent runs">
      <h3>Recent runs</h3>
      {error && <p class="coflux-lab-error" role="alert">{error}</p>}
      {data && data.length === 0 && <p class="coflux-lab-empty">No runs yet.</p>}
      <ul ref={list} role="listbox" aria-label="Recent runs" onKeyDown={onKeyDown}>
        {(data ?? []).map((run, i) => {
          const look = statusLook(run.status);
          return (
            <li key={run.id} data-run={run.id} role="option" aria-selected={false} tabIndex={i === 0 ? 0 : -1}
              class="coflux-lab-run" onClick={() => openRun(run.id)}
              title={`${run.module}/${run.target} · ${run.id} · ${look.label} · ${formatDateTime(run.created_at)}`}>
              <span class={`cf-badge coflux-lab-status cf-tone-${look.tone}${run.status === "running" ? " cf-badge-live" : ""}`}
                data-status={run.status}>
                <span class="cf-status-icon" aria-hidden="true">{look.icon}</span>{look.label}
              </span>
              <span class="coflux-lab-run-target">{run.target}</span>
              <span class="coflux-lab-run-id">{run.id}</span>
              <span class="coflux-lab-run-time">{when(run.created_at)}</span>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

interface PoolSummary {
  name: string;
  type: string;
  enabled: boolean;
  modules: string[];
  active_launches: number;
  last_error: string | null;
}

/** The default workspace's pools: launched workers and the last failed launch; Studio has the rest. */
function Pools({ api, studioUrl }: { api: CofluxClient; studioUrl: string }) {
  const load = useCallback(() => api.get<{ pools: PoolSummary[] }>("api/pools").then((r) => r.pools), [api]);
  const { data, error } = useLive(api, "workers", load);
  return (
    <section class="coflux-lab-section coflux-lab-pools" aria-label="Pools">
      <h3>Pools</h3>
      {error && <p class="coflux-lab-error" role="alert">{error}</p>}
      {data && data.length === 0 && (
        <p class="coflux-lab-empty">No pools: <code>coflux pools create NAME --type process ...</code></p>
      )}
      <ul>
        {(data ?? []).map((pool) => (
          <li key={pool.name} class="coflux-lab-pool" data-pool={pool.name} title={pool.modules.join(", ")}>
            <div class="coflux-lab-pool-row">
              <span class="coflux-lab-pool-name">{pool.name}</span>
              <span class="coflux-lab-pool-type">{pool.type}</span>
              <span class={`cf-badge cf-tone-${pool.enabled ? "ok" : "other"}`}>{pool.enabled ? "enabled" : "disabled"}</span>
              <span class="coflux-lab-pool-count">{pool.active_launches} launched</span>
            </div>
            {pool.last_error && <div class="coflux-lab-error">launch failed: {pool.last_error}</div>}
          </li>
        ))}
      </ul>
      {data && data.length > 0 && (
        <a class="coflux-lab-pools-link" href={`${studioUrl}#/pools`} target="_blank" rel="noopener">Launches in Studio ↗</a>
      )}
    </section>
  );
}
