// The Pools page: the workspace's pools (type, modules, tags, fields) and each pool's launched
// workers (state, session, start time, exit code, error and log tail). Pool and launch changes
// arrive as `pool` / `launch` events on the workers topic.
import type { JSX } from "preact";
import type { CofluxClient } from "../api/client";
import { useLoad, useThrottled, useTopic } from "./hooks";

interface PoolInfo {
  name: string;
  type: string;
  enabled: boolean;
  modules: string[];
  provides: Record<string, string[]>;
  accepts: Record<string, string[]>;
  config: Record<string, unknown>;
  active_launches: number;
  last_error: string | null;
}

interface LaunchInfo {
  id: string;
  state: string;
  session: string | null;
  worker: Record<string, unknown> | null;
  error: string | null;
  log_tail: string | null;
  exit_code: number | null;
  created_at: number;
  connected_at: number | null;
  ended_at: number | null;
}

const TONES: Record<string, string> = {
  launching: "cf-tone-wait", started: "cf-tone-wait", connected: "cf-tone-ok", stopping: "cf-tone-run",
  exited: "cf-tone-other", failed: "cf-tone-bad", lost: "cf-tone-warn",
};

function clock(at: number | null): string {
  return at ? new Date(at * 1000).toLocaleTimeString() : "—";
}

function tags(value: Record<string, string[]>): string {
  return Object.entries(value ?? {}).map(([k, v]) => `${k}:${v.join(",")}`).join(" ") || "—";
}

function where(worker: Record<string, unknown> | null): string {
  if (!worker) return "—";
  if (worker.pid) return `pid ${String(worker.pid)}`;
  if (worker.container) return `container ${String(worker.container).slice(0, 12)}`;
  if (worker.job) return `job ${String(worker.job)}`;
  return "—";
}

function Launches({ api, workspace, pool }: { api: CofluxClient; workspace: string; pool: string }): JSX.Element {
  const loaded = useLoad(() => api.get<{ launches: LaunchInfo[] }>(`api/pools/${encodeURIComponent(pool)}/launches`,
    { workspace, limit: 20 }), [api, workspace, pool]);
  const reload = useThrottled(loaded.reload, 300);
  useTopic(api, "workers", reload);
  const launches = loaded.data?.launches ?? [];
  if (loaded.error) return <p class="cf-error" role="alert">Launches could not be loaded: {loaded.error}</p>;
  if (!loaded.loading && launches.length === 0) return <p class="cf-muted">No worker launched yet.</p>;
  return (
    <table class="cf-table cf-launches-table">
      <thead><tr><th>Launch</th><th>State</th><th>Worker</th><th>Started</th><th>Exit code</th><th>Error and log tail</th></tr></thead>
      <tbody>
        {launches.map((l) => (
          <tr data-launch={l.id} data-state={l.state}>
            <td><code>{l.id}</code></td>
            <td><span class={`cf-badge cf-status ${TONES[l.state] ?? ""}`}>{l.state}</span></td>
            <td>{l.session ? <code>{l.session}</code> : <span class="cf-muted">not connected</span>}<div class="cf-muted cf-small">{where(l.worker)}</div></td>
            <td>{clock(l.created_at)}</td>
            <td>{l.exit_code ?? "—"}</td>
            <td>
              {l.error && <div class="cf-error">{l.error}</div>}
              {l.log_tail
                ? <details><summary>log tail</summary><pre class="cf-pool-log">{l.log_tail}</pre></details>
                : !l.error && <span class="cf-muted">—</span>}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function PoolsPage({ api, workspace }: { api: CofluxClient; workspace: string }): JSX.Element {
  const loaded = useLoad(() => api.get<{ pools: PoolInfo[] }>("api/pools", { workspace }), [api, workspace]);
  const reload = useThrottled(loaded.reload, 300);
  useTopic(api, "workers", reload);
  const pools = loaded.data?.pools ?? [];
  return (
    <section class="cf-page cf-pools-page">
      <h1>Pools <span class="cf-muted">{pools.length} in {workspace}</span></h1>
      {loaded.error && <p class="cf-error" role="alert">Pools could not be loaded: {loaded.error}</p>}
      {!loaded.loading && pools.length === 0 && !loaded.error && (
        <p class="cf-empty">No pool in this workspace. Create one: <code>coflux pools create NAME --type process --set directory=. --modules mymodule</code></p>
      )}
      {pools.map((p) => (
        <article class="cf-pool" data-pool={p.name}>
          <h2>
            {p.name} <span class="cf-muted">{p.type}</span>{" "}
            <span class={`cf-badge cf-status ${p.enabled ? "cf-tone-ok" : "cf-tone-other"}`}>{p.enabled ? "enabled" : "disabled"}</span>
          </h2>
          <dl class="cf-pool-fields">
            <dt>Modules</dt><dd>{p.modules.map((m) => <code>{m} </code>)}</dd>
            <dt>Provides</dt><dd>{tags(p.provides)}</dd>
            <dt>Accepts</dt><dd>{tags(p.accepts)}</dd>
            {Object.entries(p.config).map(([k, v]) => <><dt>{k}</dt><dd><code>{typeof v === "string" ? v : JSON.stringify(v)}</code></dd></>)}
          </dl>
          {p.last_error && <p class="cf-error">Last launch failed: {p.last_error}</p>}
          <Launches api={api} workspace={workspace} pool={p.name} />
        </article>
      ))}
    </section>
  );
}
