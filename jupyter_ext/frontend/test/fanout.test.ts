// The fan-out model: collapsing siblings, their counts, call labels, search, next failure, sorting.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { StepModel } from "../src/store/types";
import type { RunGraph } from "../src/views/graphmodel";
import {
  callLabel, collapseFanOuts, countStatuses, countsText, FANOUT_MIN, nextFailure, shortValue, sortMembers, stepMatches,
} from "../src/views/fanout";

function step(number: number, target: string, status: string, args: unknown[] = [], parent: string | null = "R:1:1"): StepModel {
  const latest = { id: `R:${number}:1`, attempt: 1, cause: null, created_at: 0, execute_after: null, assigned_at: 0,
    started_at: 10, session: null, worker: null, state: status, result: status === "running" ? null :
      { kind: status, value: null, error: null, successor: null, at: 10 + number / 10 } };
  return { id: `R:${number}`, number, module: "m", target, type: "task", parent, created_at: 0,
    arguments: args.map((v) => ({ v })), options: {}, cache_key: null, memo_key: null, stale: false,
    executions: [latest], status, latest, group: null, dependencies: [], memoisedBy: [] } as StepModel;
}

function graphOf(steps: StepModel[]): RunGraph {
  const nodes = steps.map((s) => ({ id: s.id, kind: "step" as const, label: s.target, step: s }));
  const edges = steps.filter((s) => s.parent).map((s) => ({ id: `R:1>${s.id}`, from: "R:1", to: s.id, kind: "child" as const }));
  return { nodes, edges, nodeOfStep: new Map(steps.map((s) => [s.id, s.id])), structureKey: "" };
}

const root = step(1, "flow", "value", [300], null);
const items = Array.from({ length: 300 }, (_, i) => step(i + 2, "scale", [17, 150, 283].includes(i) ? "error" : "value", [i, "x"]));
const last = step(302, "summarise", "value", [297]);
const run = [root, ...items, last];

test("300 calls of one target under one parent are one fan-out node; the other calls stay", () => {
  const g = collapseFanOuts(graphOf(run));
  assert.deepEqual(g.nodes.map((n) => n.kind), ["step", "fanout", "step"]);
  const fan = g.nodes[1];
  assert.equal(fan.label, "scale x300");
  assert.deepEqual(fan.members!.map((m) => m.number), items.map((s) => s.number));
  assert.equal(countsText(countStatuses(fan.members!)), "297 ok, 3 failed, 0 running");
  assert.deepEqual(g.edges.map((e) => `${e.from}>${e.to}`), [`R:1>${fan.id}`, "R:1>R:302"]);
  assert.equal(g.nodeOfStep.get("R:19"), fan.id);
  // Expanded on demand: every call is a node again.
  assert.equal(collapseFanOuts(graphOf(run), new Set([fan.id])).nodes.length, 302);
  // A handful of siblings stays as it is.
  assert.equal(collapseFanOuts(graphOf([root, ...items.slice(0, FANOUT_MIN - 1)])).nodes.length, FANOUT_MIN);
});

test("a growing fan-out keeps its layout key", () => {
  assert.equal(collapseFanOuts(graphOf(run.slice(0, 50))).structureKey, collapseFanOuts(graphOf(run.slice(0, 51))).structureKey);
});

test("a step's label is its call with the first argument's short form", () => {
  assert.equal(callLabel(items[17]), "scale(17, …)");
  assert.equal(callLabel(last), "summarise(297)");
  assert.equal(shortValue({ v: "a rather long string argument" }), "\"a rather long st…");
  assert.equal(shortValue({ v: [1, 2, 3] }), "[1, 2, 3]");
  assert.equal(shortValue({ v: { $: "tuple", items: [5] } }), "(5,)");
  assert.equal(shortValue({ v: Array.from({ length: 40 }, (_, i) => i) }), "[40 items]");
  assert.equal(shortValue({ v: { $: "ref", i: 0 }, refs: ["R:7:1"] }), "↪#7");
});

test("search matches target, number and arguments; the status filter by class", () => {
  assert.deepEqual(run.filter((s) => stepMatches(s, { text: "150, ", status: "" })).map((s) => s.number), [152]);
  assert.deepEqual(run.filter((s) => stepMatches(s, { text: "", status: "failed" })).map((s) => s.number), [19, 152, 285]);
  assert.equal(run.filter((s) => stepMatches(s, { text: "SUMMARISE", status: "" })).length, 1);
});

test("next and previous failure go in call order and wrap", () => {
  assert.equal(nextFailure(run, null, 1)?.number, 19);
  assert.equal(nextFailure(run, "R:19", 1)?.number, 152);
  assert.equal(nextFailure(run, "R:285", 1)?.number, 19);
  assert.equal(nextFailure(run, null, -1)?.number, 285);
  assert.equal(nextFailure(run, "R:19", -1)?.number, 285);
  assert.equal(nextFailure([root], null, 1), undefined);
});

test("members sort by status (failures first), duration and item", () => {
  assert.deepEqual(sortMembers(items, "status", false, 0).slice(0, 3).map((s) => s.number), [19, 152, 285]);
  assert.equal(sortMembers(items, "duration", true, 0)[0].number, 301);
  assert.equal(sortMembers(items, "item", true, 0)[0].number, 301);
});

test("the children of a fan-out's members are a fan-out of their own", () => {
  const loads = items.map((s, i) => step(400 + i, "load", "value", [i], `${s.id}:1`));
  const graph = graphOf([root, ...items, ...loads]);
  // graphOf links every step to the root; link each load to its own scale call instead.
  graph.edges = [...graph.edges.filter((e) => !loads.some((l) => l.id === e.to)),
    ...loads.map((l) => ({ id: `${l.parent!.slice(0, -2)}>${l.id}`, from: l.parent!.slice(0, -2), to: l.id, kind: "child" as const }))];
  const g = collapseFanOuts(graph);
  assert.deepEqual(g.nodes.map((n) => n.label), ["flow", "scale x300", "load x300"]);
  assert.deepEqual(g.edges.map((e) => `${e.from}>${e.to}`), [`R:1>${g.nodes[1].id}`, `${g.nodes[1].id}>${g.nodes[2].id}`]);
});
