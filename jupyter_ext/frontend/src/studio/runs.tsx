// The runs list (all, or one workflow's): status, started, duration, filters, live, keyboard.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { JSX } from "preact";
import type { CofluxClient } from "../api/client";
import { RunState } from "../api/protocol";
import type { RunResultEvent } from "../api/protocol";
import type { RunSummary } from "../api/types";
import { foldOutcome, runDuration, type HeldOutcome } from "../store/outcome";
import { statusLook } from "../views/status";
import { formatDateTime, formatDuration, plural } from "../views/format";
import { useLoad, useThrottled, useTicker, useTopic } from "./hooks";
import { href, navigate } from "./route";

// A run's status, state and duration are the server's (store/outcome.ts); the list only shows them.
const STATES: RunState[] = Object.values(RunState);

type Row = RunSummary;

const LIMIT = 200;

function Status({ kind }: { kind: string }): JSX.Element {
  const look = statusLook(kind);
  return <span class={`cf-badge cf-status cf-tone-${look.tone}`}><span class="cf-status-icon" aria-hidden="true">{look.icon}</span> {look.label}</span>;
}

export function RunsPage({ api, workspace }: { api: CofluxClient; workspace: string }): JSX.Element {
  return (
    <section class="cf-page cf-runs-page">
      <h1>Runs</h1>
      <RunsList api={api} workspace={workspace} />
    </section>
  );
}

export function RunsList({ api, workspace, workflow }:
  { api: CofluxClient; workspace: string; workflow?: string }): JSX.Element {
  const [module, target] = workflow ? [workflow.slice(0, workflow.lastIndexOf("/")), workflow.slice(workflow.lastIndexOf("/") + 1)] : [undefined, undefined];
  const loaded = useLoad(() => api.get<{ runs: Row[] }>("api/runs", { module, target, limit: LIMIT }), [api, workflow]);
  const [live, setLive] = useState<Map<string, HeldOutcome>>(new Map());
  const [status, setStatus] = useState<"" | RunState>("");
  const [chosenWorkflow, setChosenWorkflow] = useState("");
  const [text, setText] = useState("");
  const [allWorkspaces, setAllWorkspaces] = useState(false);
  const [selected, setSelected] = useState(0);
  const body = useRef<HTMLTableSectionElement>(null);

  const reload = useThrottled(loaded.reload, 500);
  useTopic(api, "runs", (event) => {
    if (event.type === "run_result" && typeof event.run === "string") {
      const result = event as unknown as RunResultEvent & { seq: number };
      setLive((m) => {
        const held = foldOutcome(m.get(result.run) ?? null, result, result.seq, "event");
        return held === m.get(result.run) || !held ? m : new Map(m).set(result.run, held);
      });
    } else if (event.type === "run" || event.type === "resync") {
      reload();
    }
  });
  useEffect(() => setLive(new Map()), [loaded.data]);

  const rows: Row[] = useMemo(() => (loaded.data?.runs ?? []).map((r) => ({ ...r, ...(live.get(r.id)?.outcome ?? {}) })), [loaded.data, live]);
  const workflows = useMemo(() => [...new Set(rows.map((r) => `${r.module}/${r.target}`))].sort(), [rows]);
  const needle = text.trim().toLowerCase();
  const shown = rows.filter((r) =>
    (allWorkspaces || r.workspace === workspace)
    && (!status || r.state === status)
    && (!chosenWorkflow || `${r.module}/${r.target}` === chosenWorkflow)
    && (!needle || `${r.id} ${r.module}/${r.target} ${r.status} ${r.workspace}`.toLowerCase().includes(needle)));
  const anyRunning = shown.some((r) => r.state === RunState.RUNNING);
  const now = useTicker(anyRunning);
  const index = Math.min(selected, Math.max(0, shown.length - 1));

  const focusRow = (i: number) => {
    setSelected(i);
    const row = body.current?.querySelectorAll<HTMLElement>("tr")[i];
    row?.focus();
    row?.scrollIntoView({ block: "nearest" });
  };
  const onKey = (e: KeyboardEvent) => {
    if (shown.length === 0) return;
    const page = 10;
    const moves: Record<string, number> = {
      ArrowDown: index + 1, ArrowUp: index - 1, j: index + 1, k: index - 1, Home: 0, End: shown.length - 1,
      PageDown: index + page, PageUp: index - page,
    };
    if (e.key in moves) {
      e.preventDefault();
      focusRow(Math.max(0, Math.min(shown.length - 1, moves[e.key])));
    } else if (e.key === "Enter") {
      e.preventDefault();
      navigate(href.run(shown[index].id));
    }
  };

  return (
    <div class="cf-runs">
      <div class="cf-filters" role="search">
        <label>Status{" "}
          <select value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value as RunState | "")}>
            <option value="">all</option>
            {STATES.map((s) => <option value={s}>{s}</option>)}
          </select>
        </label>
        {!workflow && (
          <label>Workflow{" "}
            <select value={chosenWorkflow} onChange={(e) => setChosenWorkflow((e.target as HTMLSelectElement).value)}>
              <option value="">all</option>
              {workflows.map((w) => <option value={w}>{w}</option>)}
            </select>
          </label>
        )}
        <label>Search{" "}
          <input type="search" value={text} placeholder="run id, workflow…" onInput={(e) => setText((e.target as HTMLInputElement).value)} />
        </label>
        <label class="cf-check"><input type="checkbox" checked={allWorkspaces} onChange={(e) => setAllWorkspaces((e.target as HTMLInputElement).checked)} /> all workspaces</label>
        <span class="cf-muted cf-count" aria-live="polite">{shown.length} of {plural(rows.length, "run")}</span>
      </div>
      {loaded.error && <p class="cf-error" role="alert">Runs could not be loaded: {loaded.error}</p>}
      {!loaded.loading && shown.length === 0 && !loaded.error && (
        <p class="cf-empty">{rows.length === 0 ? "No runs yet: start one from Workflows." : "No run matches the filters."}</p>
      )}
      {shown.length > 0 && (
        <table class="cf-table cf-runs-table" aria-label="Runs (arrow keys move, Enter opens)">
          <thead><tr><th>Status</th><th>Run</th><th>Workflow</th><th>Started</th><th>Duration</th>{allWorkspaces && <th>Workspace</th>}</tr></thead>
          <tbody ref={body} onKeyDown={onKey}>
            {shown.map((r, i) => {
              const running = r.state === RunState.RUNNING;
              const duration = runDuration(r, now);
              return (
                <tr tabIndex={i === index ? 0 : -1} aria-selected={i === index} class={i === index ? "cf-selected" : ""}
                  data-run={r.id} onClick={() => navigate(href.run(r.id))} onFocus={() => setSelected(i)}>
                  <td><Status kind={r.status} /></td>
                  <td><a href={href.run(r.id)} tabIndex={-1}><code>{r.id}</code></a>{r.parent && <span class="cf-muted" title={`child of ${r.parent}`}> ↳ child</span>}</td>
                  <td>{r.module}/<b>{r.target}</b></td>
                  <td>{formatDateTime(r.created_at)}</td>
                  <td>{duration != null ? formatDuration(duration) + (running ? " so far" : "") : <span class="cf-muted">—</span>}</td>
                  {allWorkspaces && <td>{r.workspace}</td>}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}
