// The Workers page: sessions, what they host and provide, their concurrency and current work.
import type { JSX } from "preact";
import type { CofluxClient } from "../api/client";
import type { WorkerInfo } from "../api/types";
import { useLoad, useThrottled, useTopic } from "./hooks";
import { href } from "./route";

function stepLink(executionId: string): JSX.Element {
  const [run, step] = executionId.split(":");
  return <a href={href.step(run, `${run}:${step}`)}><code>{executionId}</code></a>;
}

function Tags({ value }: { value: Record<string, unknown> }): JSX.Element {
  const entries = Object.entries(value ?? {});
  if (entries.length === 0) return <span class="cf-muted">—</span>;
  return <>{entries.map(([k, v]) => <span class="cf-tag">{k}: {Array.isArray(v) ? v.join(" | ") : String(v)}</span>)}</>;
}

export function WorkersPage({ api }: { api: CofluxClient }): JSX.Element {
  const loaded = useLoad(() => api.get<{ workers: WorkerInfo[] }>("api/workers"), [api]);
  const reload = useThrottled(loaded.reload, 300);
  useTopic(api, "workers", reload);
  // What a worker runs changes with every step: follow the runs feed too, and keep it cheap.
  useTopic(api, "runs", reload);
  const workers = loaded.data?.workers ?? [];
  return (
    <section class="cf-page cf-workers-page">
      <h1>Workers <span class="cf-muted">{workers.filter((w) => w.connected).length} connected</span></h1>
      {loaded.error && <p class="cf-error" role="alert">Workers could not be loaded: {loaded.error}</p>}
      {!loaded.loading && workers.length === 0 && !loaded.error && (
        <p class="cf-empty">No worker has connected. Start one: <code>coflux worker mymodule</code> (or run a cell in a notebook with <code>%load_ext coflux</code>).</p>
      )}
      {workers.length > 0 && (
        <table class="cf-table cf-workers-table">
          <thead><tr><th>Worker</th><th>State</th><th>Kind</th><th>Modules and targets</th><th>Provides</th><th>Concurrency</th><th>Running now</th></tr></thead>
          <tbody>
            {workers.map((w) => {
              const modules = new Map<string, string[]>();
              for (const t of w.targets ?? []) {
                const i = t.lastIndexOf("/");
                modules.set(t.slice(0, i), [...(modules.get(t.slice(0, i)) ?? []), t.slice(i + 1)]);
              }
              return (
                <tr data-worker={w.name}>
                  <td><b>{w.name}</b><div class="cf-muted cf-small">{w.id}</div></td>
                  <td>{w.connected
                    ? <span class="cf-badge cf-status cf-tone-ok"><span class="cf-status-icon" aria-hidden="true">●</span> connected</span>
                    : <span class="cf-badge cf-status cf-tone-warn"><span class="cf-status-icon" aria-hidden="true">○</span> disconnected</span>}</td>
                  <td>{w.kind}</td>
                  <td>{[...modules.entries()].map(([m, names]) => <div><code>{m}</code>: {names.join(", ")}</div>)}
                    {modules.size === 0 && <span class="cf-muted">—</span>}</td>
                  <td><Tags value={w.provides} /></td>
                  <td>{w.running.length} / {w.concurrency}</td>
                  <td>{w.running.length ? w.running.map((e) => <div>{stepLink(e)}</div>) : <span class="cf-muted">idle</span>}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
