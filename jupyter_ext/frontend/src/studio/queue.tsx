// The Queue page: executions that have not started, and why each waits (GET api/queue).
import { useEffect } from "preact/hooks";
import type { JSX } from "preact";
import type { CofluxClient } from "../api/client";
import { formatDateTime, formatDuration } from "../views/format";
import { useLoad, useThrottled, useTicker, useTopic } from "./hooks";
import { href } from "./route";

interface QueueEntry {
  id: string;
  run: string;
  step: string;
  module: string;
  target: string;
  type: string;
  attempt: number;
  parent: string | null;
  created_at: number | null;
  execute_after: number | null;
  assigned: boolean;
  session: string | null;
  worker: string | null;
  waiting: string;
}

const POLL_MS = 3000; // reasons change without events (a worker's free slots, a delay passing)

export function QueuePage({ api }: { api: CofluxClient }): JSX.Element {
  const loaded = useLoad(() => api.get<{ queue: QueueEntry[]; total: number }>("api/queue", { limit: 500 }), [api]);
  const reload = useThrottled(loaded.reload, 500);
  useTopic(api, "runs", reload);
  useTopic(api, "workers", reload);
  useEffect(() => {
    const id = setInterval(() => { if (!document.hidden) loaded.reload(); }, POLL_MS);
    return () => clearInterval(id);
  }, []);
  const now = useTicker(true);
  const queue = loaded.data?.queue ?? [];
  const total = loaded.data?.total ?? 0;
  return (
    <section class="cf-page cf-queue-page">
      <h1>Queue <span class="cf-muted">{total} waiting</span></h1>
      {loaded.error && <p class="cf-error" role="alert">The queue could not be loaded: {loaded.error}</p>}
      {!loaded.loading && queue.length === 0 && !loaded.error && <p class="cf-empty">Nothing is waiting: every execution has started or finished.</p>}
      {queue.length > 0 && (
        <table class="cf-table cf-queue-table">
          <thead><tr><th>Execution</th><th>Target</th><th>Waiting since</th><th>Why it waits</th></tr></thead>
          <tbody>
            {queue.map((q) => (
              <tr data-execution={q.id}>
                <td><a href={href.step(q.run, q.step)}><code>{q.id}</code></a>{q.attempt > 1 && <span class="cf-muted"> attempt {q.attempt}</span>}</td>
                <td>{q.module}/<b>{q.target}</b> <span class="cf-muted">{q.type}</span></td>
                <td>{q.created_at ? <>{formatDateTime(q.created_at)} <span class="cf-muted">({formatDuration(now - q.created_at)})</span></> : "—"}</td>
                <td class="cf-reason">{q.assigned && <span class="cf-tag">assigned{q.worker ? ` to ${q.worker}` : ""}</span>} {q.waiting}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {total > queue.length && <p class="cf-muted">Showing the oldest {queue.length} of {total}.</p>}
    </section>
  );
}
