// Figures for the run store (npm run bench): how long folding a big run takes in Node (the
// browser's engine is the same V8). Prints figures; asserts nothing.
import { openRunModel } from "../src/store/runstore";
import type { Feed, TopicHandler } from "../src/api/feed";
import type { CofluxApi } from "../src/store/types";
import type { FeedEvent, LogLine, RunSnapshot, StepInfo } from "../src/api/types";

const STEPS = 1000;
const LOG_LINES = 100_000;
const METRICS = 10;
const POINTS = 10_000;

function step(n: number): StepInfo {
  return {
    id: `R1:${n}`, number: n, module: "m", target: n === 1 ? "flow" : "task", type: n === 1 ? "workflow" : "task",
    parent: n === 1 ? null : "R1:1:1", created_at: 1, arguments: [{ v: n }], options: {}, cache_key: null, memo_key: null,
    stale: false,
    executions: [{ id: `R1:${n}:1`, attempt: 1, cause: null, created_at: 1, execute_after: null, assigned_at: 2,
      started_at: 3, session: "S", worker: "w", state: "value", result: { kind: "value", value: { v: n }, error: null, successor: null, at: 4 } }],
  };
}

const snapshot: RunSnapshot = {
  id: "R1", workspace: "default", module: "m", target: "flow", parent: null, created_at: 1, requires: null, memo: false,
  seq: 1, steps: Array.from({ length: STEPS }, (_, i) => step(i + 1)),
  children: Array.from({ length: STEPS - 1 }, (_, i) => ({ parent: "R1:1:1", child: `R1:${i + 2}:1`, group: null, memo: false })),
  dependencies: Array.from({ length: STEPS - 1 }, (_, i) => ({ execution: "R1:1:1", dependency: `R1:${i + 2}:1` })),
  groups: [], child_runs: [],
};
const lines: LogLine[] = Array.from({ length: LOG_LINES }, (_, i) => ({
  id: i + 1, execution_id: `R1:${(i % STEPS) + 1}:1`, level: "info", template: "line {i}", fields: { i: { v: i } }, at: 5,
}));
const series = Array.from({ length: METRICS }, (_, m) => ({
  execution_id: "R1:2:1", key: `m${m}`, group: null, scale: null,
  points: Array.from({ length: POINTS }, (_, i) => [i, Math.sin(i / 100)] as [number, number]),
}));

let handler: TopicHandler | null = null;
const feed = {
  connected: true,
  subscribe: (_topic: string, h: TopicHandler) => { handler = h; return () => undefined; },
  onConnection: () => () => undefined,
} as unknown as Feed;
const api = {
  base: "/",
  get: async (path: string, query?: Record<string, unknown>) => {
    if (path.endsWith("/logs")) {
      const after = Number(query?.after ?? 0);
      const page = lines.slice(after, after + 10_000);
      return { lines: page, last: page.length ? page[page.length - 1].id : after, more: page.length === 10_000, seq: 1 };
    }
    if (path.endsWith("/metrics")) return { series, seq: 1 };
    if (path.endsWith("/assets")) return { assets: [] };
    return snapshot;
  },
} as unknown as CofluxApi;

const ms = (start: number) => `${(performance.now() - start).toFixed(1)} ms`;
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

const t0 = performance.now();
const model = openRunModel(api, feed, "R1");
for (let i = 0; i < 20; i += 1) await settle(); // the log pages, metrics and assets load
console.log(`load ${LOG_LINES} log lines (10 pages) + ${METRICS}x${POINTS} metric points: ${ms(t0)}`);

let t = performance.now();
handler!.onSnapshot(snapshot);
model.steps();
console.log(`fold a ${STEPS}-step snapshot and build the step models: ${ms(t)}`);

t = performance.now();
let seq = 10;
for (let n = STEPS + 1; n <= STEPS * 2; n += 1) {
  const execution = `R1:${n}:1`;
  handler!.onEvent({ seq: ++seq, type: "step", step: `R1:${n}`, execution, number: n, parent: "R1:1:1", module: "m", target: "task", kind: "task" } as FeedEvent);
  handler!.onEvent({ seq: ++seq, type: "assigned", execution, at: 2 } as FeedEvent);
  handler!.onEvent({ seq: ++seq, type: "started", execution, at: 3 } as FeedEvent);
  handler!.onEvent({ seq: ++seq, type: "result", execution, kind: "value", at: 4 } as FeedEvent);
}
model.steps();
console.log(`fold ${STEPS * 4} live events (${STEPS} more steps) and rebuild the models: ${ms(t)}`);

t = performance.now();
for (let i = 0; i < 100; i += 1) {
  const first = LOG_LINES + i * 100 + 1;
  handler!.onEvent({ seq: ++seq, type: "logs", execution: "R1:2:1",
    lines: Array.from({ length: 100 }, (_, k) => ({ ...lines[0], id: first + k })) } as FeedEvent);
  model.logs();
}
console.log(`append 100 log events of 100 lines to ${LOG_LINES} (reading logs() each time): ${ms(t)}`);
console.log(`model: ${model.steps().length} steps, ${model.logs().length} log lines, ${model.metrics().length} series`);
model.dispose();
process.exit(0);
