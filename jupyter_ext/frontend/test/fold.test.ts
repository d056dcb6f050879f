// The run fold: the same rules as coflux/runview.py (idempotent, order-tolerant, forward-only
// status within an attempt, later attempts supersede), plus edges from the live events.
import { test } from "node:test";
import assert from "node:assert/strict";
import { RunFold, latestOf, noChange } from "../src/store/fold";
import type { FeedEvent, RunSnapshot } from "../src/api/types";

const RUN = "R1";
let seq = 0;
const ev = (type: string, fields: Record<string, unknown>): FeedEvent => ({ seq: ++seq, type, ...fields });

function snapshot(): RunSnapshot {
  return {
    id: RUN, workspace: "default", module: "m", target: "flow", parent: null, created_at: 1, requires: null,
    memo: false, seq: 10, children: [], dependencies: [], groups: [], child_runs: [],
    status: "running", state: "running", started_at: 1, finished_at: null, duration: null, execution: "R1:1:1",
    steps: [{
      id: "R1:1", number: 1, module: "m", target: "flow", type: "workflow", parent: null, created_at: 1,
      arguments: [{ v: 3 }], options: {}, cache_key: null, memo_key: null, stale: false,
      executions: [{ id: "R1:1:1", attempt: 1, cause: null, created_at: 1, execute_after: null, assigned_at: 2,
        started_at: 3, session: "S", worker: "w", state: "running", result: null }],
    }],
  };
}

function fold(events: FeedEvent[], withSnapshot = true): RunFold {
  const f = new RunFold(RUN);
  if (withSnapshot) f.load(snapshot());
  for (const e of events) f.apply(e, noChange());
  return f;
}

const status = (f: RunFold, step: string) => latestOf(f.steps.get(step)!)!.state;

test("repeated events change nothing (idempotent)", () => {
  const events = [
    ev("step", { step: "R1:2", execution: "R1:2:1", number: 2, parent: "R1:1:1", module: "m", target: "t", kind: "task" }),
    ev("assigned", { execution: "R1:2:1", at: 5 }),
    ev("started", { execution: "R1:2:1", at: 6 }),
    ev("result", { execution: "R1:2:1", kind: "value", at: 7 }),
  ];
  const once = fold(events);
  const twice = fold([...events, ...events]);
  assert.deepEqual([...twice.steps.entries()], [...once.steps.entries()]);
  assert.equal(status(twice, "R1:2"), "value");
  assert.equal(twice.children.size, 1);
});

test("a status only moves forward within an attempt (late events are out of order)", () => {
  const f = fold([
    ev("result", { execution: "R1:1:1", kind: "error", at: 9, error: { type: "builtins.ValueError", message: "x" } }),
    ev("started", { execution: "R1:1:1", at: 3 }),
    ev("assigned", { execution: "R1:1:1", at: 2 }),
  ]);
  assert.equal(status(f, "R1:1"), "error");
  // The snapshot (older: "running") folded again does not move it back either.
  f.load(snapshot());
  assert.equal(status(f, "R1:1"), "error");
  assert.equal(latestOf(f.steps.get("R1:1")!)!.result?.error?.message, "x");
});

test("a later attempt supersedes, and events of the earlier one no longer decide the status", () => {
  const f = fold([
    ev("result", { execution: "R1:1:1", kind: "error", at: 9, error: { type: "E", message: "boom" } }),
    ev("attempt", { step: "R1:1", execution: "R1:1:2", attempt: 2, cause: "retry", created_at: 10 }),
  ]);
  assert.equal(status(f, "R1:1"), "pending");
  f.apply(ev("result", { execution: "R1:1:1", kind: "error", at: 9 }), noChange());
  assert.equal(status(f, "R1:1"), "pending");
  f.apply(ev("started", { execution: "R1:1:2", at: 11 }), noChange());
  assert.equal(status(f, "R1:1"), "running");
  assert.equal(f.steps.get("R1:1")!.executions.get("R1:1:2")!.cause, "retry");
});

test("events before the snapshot: the step exists at once, the snapshot fills in its details", () => {
  const f = fold([ev("assigned", { execution: "R1:3:1", at: 4 })], false);
  const placeholder = f.steps.get("R1:3")!;
  assert.equal(placeholder.detailed, false);
  assert.equal(status(f, "R1:3"), "assigned");
  const snap = snapshot();
  snap.steps.push({ ...snap.steps[0], id: "R1:3", number: 3, target: "late", parent: "R1:1:1", arguments: [{ v: "a" }],
    executions: [{ ...snap.steps[0].executions[0], id: "R1:3:1", state: "pending", assigned_at: null, started_at: null }] });
  f.load(snap);
  const step = f.steps.get("R1:3")!;
  assert.equal(step.detailed, true);
  assert.equal(step.info.target, "late");
  assert.deepEqual(step.info.arguments, [{ v: "a" }]);
  assert.equal(status(f, "R1:3"), "assigned", "the older snapshot does not move it back to pending");
});

test("a snapshot's result value is kept when a later result event (without values) repeats it", () => {
  const snap = snapshot();
  snap.steps[0].executions[0] = { ...snap.steps[0].executions[0], state: "value",
    result: { kind: "value", value: { v: 42 }, error: null, successor: null, at: 8 } };
  const f = new RunFold(RUN);
  f.load(snap);
  f.apply(ev("result", { execution: "R1:1:1", kind: "value", at: 8 }), noChange());
  assert.deepEqual(latestOf(f.steps.get("R1:1")!)!.result?.value, { v: 42 });
});

const outcome = (status: string, state: string, finished: number | null, execution: string) =>
  ({ run: RUN, kind: status, at: finished ?? 0, status, state, started_at: 1, finished_at: finished,
    duration: finished === null ? null : finished - 1, execution });

test("the run's status and duration are the server's: from the snapshot, then run_result events", () => {
  // Steps say nothing about it: the root's attempt ended abandoned, the run is what the server says.
  const f = fold([ev("result", { execution: "R1:1:1", kind: "abandoned", at: 5 })]);
  assert.equal(f.status(), "running", "the snapshot's");
  f.apply(ev("run_result", outcome("abandoned", "failed", 5, "R1:1:1")), noChange());
  assert.equal(f.status(), "abandoned");
  // A re-run of the root step: running again, then its value is the run's.
  f.apply(ev("attempt", { step: "R1:1", execution: "R1:1:2", attempt: 2, cause: "rerun" }), noChange());
  const running = ev("run_result", outcome("running", "running", null, "R1:1:2"));
  f.apply(running, noChange());
  assert.equal(f.status(), "running");
  const done = ev("run_result", outcome("value", "succeeded", 9, "R1:1:2"));
  f.apply(done, noChange());
  assert.deepEqual([f.status(), f.outcome()?.state, f.outcome()?.duration], ["value", "succeeded", 8]);
  // Late or repeated events, and a snapshot older than what is held, change nothing.
  f.apply(running, noChange());
  f.apply(done, noChange());
  f.load(snapshot());
  assert.equal(f.status(), "value");
  // A newer snapshot wins (its seq is at or after the last event's).
  f.load({ ...snapshot(), seq: done.seq, status: "error", state: "failed", finished_at: 12, duration: 11 });
  assert.equal(f.status(), "error");
  assert.equal(new RunFold(RUN).status(), "pending", "nothing heard yet");
});

test("edges: dependencies, groups, memo hits and child runs, from events and snapshots alike", () => {
  const f = fold([
    ev("step", { step: "R1:2", execution: "R1:2:1", number: 2, parent: "R1:1:1", module: "m", target: "t", kind: "task", group: 0 }),
    ev("group", { execution: "R1:1:1", group: 0, name: "squares" }),
    ev("dependency", { execution: "R1:1:1", dependency: "R1:2:1" }),
    ev("memo", { parent: "R1:1:1", execution: "R1:2:1" }),
    ev("child_run", { run: "R7", parent: "R1:1:1", module: "m", target: "child" }),
    ev("dependency", { execution: "R1:1:1", dependency: "R1:2:1" }),
  ]);
  assert.equal(f.dependencies.size, 1);
  assert.equal(f.groups.get("R1:1:1#0")?.name, "squares");
  assert.deepEqual([...f.children.values()].map((e) => [e.child, e.group, e.memo]), [["R1:2:1", 0, false], ["R1:2:1", null, true]]);
  assert.deepEqual([...f.childRuns.keys()], ["R7"]);
});

test("warnings: the latest text", () => {
  const f = fold([ev("warning", { execution: "R1:1:1", message: "first" }), ev("warning", { execution: "R1:1:1", message: "second" })]);
  assert.equal(f.warning, "second");
});

test("a pending step's waiting reason is dropped once it is assigned (no stale reason in the header)", () => {
  const snap = snapshot();
  snap.steps.push({
    id: "R1:2", number: 2, module: "m", target: "t", type: "task", parent: "R1:1:1", created_at: 1,
    arguments: [], options: {}, cache_key: null, memo_key: null, stale: false,
    executions: [{ id: "R1:2:1", attempt: 1, cause: null, created_at: 1, execute_after: null, assigned_at: null,
      started_at: null, session: null, worker: null, state: "pending", result: null,
      waiting: "waiting for a free worker slot" }],
  });
  const f = new RunFold(RUN);
  f.load(snap);
  assert.equal(latestOf(f.steps.get("R1:2")!)!.waiting, "waiting for a free worker slot");
  f.apply(ev("assigned", { execution: "R1:2:1", at: 5 }), noChange());
  assert.equal(latestOf(f.steps.get("R1:2")!)!.waiting, undefined);
  assert.equal(status(f, "R1:2"), "assigned");
});
