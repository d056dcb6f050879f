// The feed's ordering guarantees, with a scripted socket (the browser tests use the real server;
// here the interleavings that a real server makes rare are played exactly).
import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { Feed } from "../src/api/feed";
import type { FeedEvent } from "../src/api/types";

class ScriptedSocket {
  static all: ScriptedSocket[] = [];
  sent: { id: number; op: string; params: Record<string, unknown> }[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((m: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) { ScriptedSocket.all.push(this); }
  send(data: string) { this.sent.push(JSON.parse(data)); }
  close() { this.onclose?.(); }
  open() { this.onopen?.(); }
  push(message: unknown) { this.onmessage?.({ data: JSON.stringify(message) }); }
  reply(op: string, ok: unknown) {
    const request = [...this.sent].reverse().find((r) => r.op === op)!;
    this.push({ re: request.id, ok });
  }
  events(topic: string, ...seqs: number[]) {
    this.push({ op: "events", events: seqs.map((seq) => ({ topic, data: { seq, type: "step" } })) });
  }
}
(globalThis as unknown as { WebSocket: unknown }).WebSocket = ScriptedSocket;
const settle = () => new Promise((resolve) => setImmediate(resolve)); // replies resolve promises

function follow(feed: Feed, topic: string) {
  const seen: number[] = [];
  const snapshots: unknown[] = [];
  const synced = { count: 0 };
  const off = feed.subscribe(topic, {
    onSnapshot: (s) => snapshots.push(s), onEvent: (e: FeedEvent) => seen.push(e.seq), onSynced: () => { synced.count += 1; },
  });
  return { seen, snapshots, synced, off };
}

test("live events before the snapshot wait for it; nothing at or below its seq is applied", async () => {
  ScriptedSocket.all = [];
  const feed = new Feed(() => "ws://x/api/ws");
  const run = follow(feed, "run:R1");
  const ws = ScriptedSocket.all[0];
  ws.open();
  assert.deepEqual(ws.sent[0].params, { topic: "run:R1" });
  ws.events("run:R1", 9, 11);            // pushed between the subscription and its reply
  assert.deepEqual(run.seen, []);
  ws.reply("subscribe", { id: "R1", seq: 10, steps: [] });
  await settle();
  assert.equal(run.snapshots.length, 1);
  assert.deepEqual(run.seen, [11], "9 is in the snapshot already");
  ws.events("run:R1", 11, 12);
  assert.deepEqual(run.seen, [11, 12], "a repeat is dropped");
  feed.close();
});

test("after a reconnect: resubscribe after the last seq, apply what was missed, then live ones, once each", async () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    ScriptedSocket.all = [];
    const feed = new Feed(() => "ws://x/api/ws");
    const states: boolean[] = [];
    feed.onConnection((c) => states.push(c));
    const run = follow(feed, "run:R1");
    const first = ScriptedSocket.all[0];
    first.open();
    first.reply("subscribe", { id: "R1", seq: 10, steps: [] });
    await settle();
    first.events("run:R1", 11);
    first.close();
    assert.deepEqual(states, [true, false]);
    mock.timers.tick(10_000);              // the backoff passes
    const second = ScriptedSocket.all[1];
    assert.ok(second, "it reconnected by itself");
    second.open();
    assert.deepEqual(second.sent[0].params, { topic: "run:R1", after: 11 });
    second.events("run:R1", 13);           // live, before the reply with what was missed
    second.reply("subscribe", { events: [{ seq: 12, type: "step" }, { seq: 13, type: "step" }] });
    await settle();
    second.events("run:R1", 14);
    assert.deepEqual(run.seen, [11, 12, 13, 14]);
    assert.equal(run.snapshots.length, 1, "no second snapshot: the missed events were enough");
    assert.deepEqual(states, [true, false, true]);
    assert.equal(run.synced.count, 2, "live again after each subscribe reply");
    // A reconnect that missed nothing is live again too (a view stops saying "disconnected").
    second.close();
    mock.timers.tick(20_000);
    const third = ScriptedSocket.all[2];
    third.open();
    assert.deepEqual(third.sent[0].params, { topic: "run:R1", after: 14 });
    third.reply("subscribe", { events: [] });
    await settle();
    assert.equal(run.synced.count, 3);
    assert.deepEqual(run.seen, [11, 12, 13, 14]);
    feed.close();
  } finally {
    mock.timers.reset();
  }
});

test("viewers of one topic share its subscription; the last one to leave unsubscribes", async () => {
  ScriptedSocket.all = [];
  const feed = new Feed(() => "ws://x/api/ws");
  const a = follow(feed, "runs");
  const ws = ScriptedSocket.all[0];
  ws.open();
  ws.reply("subscribe", { snapshot: null, seq: 5 });
  await settle();
  const b = follow(feed, "runs");
  assert.equal(ws.sent.filter((r) => r.op === "subscribe").length, 1);
  ws.push([{ op: "events", events: [{ topic: "runs", data: { seq: 6, type: "run" } }] }]); // a frame may be a list
  assert.deepEqual(a.seen, [6]);
  assert.deepEqual(b.seen, [6]);
  a.off();
  assert.equal(ws.sent.filter((r) => r.op === "unsubscribe").length, 0);
  b.off();
  assert.deepEqual(ws.sent.filter((r) => r.op === "unsubscribe").map((r) => r.params), [{ topic: "runs" }]);
  feed.close();
});
