// The run dialog's typed arguments and Studio's routes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { collect, fieldKind, fieldsOf, initialText, parseField } from "../src/studio/args";
import { href, parseRoute } from "../src/studio/route";

test("annotations become field kinds", () => {
  assert.deepEqual(fieldKind("int"), { kind: "int", optional: false });
  assert.deepEqual(fieldKind("list[int]"), { kind: "list", optional: false });
  assert.deepEqual(fieldKind("Optional[float]"), { kind: "float", optional: true });
  assert.deepEqual(fieldKind("dict[str, int] | None"), { kind: "dict", optional: true });
  assert.deepEqual(fieldKind("int | str"), { kind: "json", optional: false });
  assert.deepEqual(fieldKind(null), { kind: "json", optional: false });
  assert.deepEqual(fieldKind("pandas.DataFrame"), { kind: "json", optional: false });
});

const [count, factor, label, flag, tags, extra] = fieldsOf([
  { name: "count", annotation: "int" },
  { name: "factor", annotation: "float", default: { v: 2.0 } },
  { name: "label", annotation: "str", default: { v: "demo" } },
  { name: "flag", annotation: "bool" },
  { name: "tags", annotation: "list", default: { v: { $: "tuple", items: [] } } },
  { name: "extra", annotation: "Optional[dict]" },
]);

test("values are parsed by type, with messages for what is wrong", () => {
  assert.deepEqual(parseField(count, " 42 "), { ok: true, value: 42, omit: false });
  const bad = parseField(count, "4.5");
  assert.ok(!bad.ok && bad.message.includes("not an integer"));
  assert.ok(!parseField(count, "").ok, "a required int needs a value");
  assert.ok(!parseField(count, "123456789012345678901").ok, "too large to send exactly");
  assert.deepEqual(parseField(factor, "1e-3"), { ok: true, value: 0.001, omit: false });
  assert.ok(!parseField(factor, "fast").ok);
  assert.deepEqual(parseField(label, "  spaced "), { ok: true, value: "  spaced ", omit: false });
  assert.deepEqual(parseField(flag, "true"), { ok: true, value: true, omit: false });
  assert.deepEqual(parseField(tags, "[1, \"a\"]"), { ok: true, value: [1, "a"], omit: false });
  const notList = parseField(tags, '{"a": 1}');
  assert.ok(!notList.ok && notList.message.includes("list"));
  const broken = parseField(tags, "[1,");
  assert.ok(!broken.ok && broken.message.includes("not valid JSON"));
  assert.deepEqual(parseField(extra, ""), { ok: true, value: null, omit: false }, "Optional: empty is None");
});

test("defaults: plain JSON ones are filled in, others are used when the field is left empty", () => {
  assert.equal(initialText(factor), "2.0");
  assert.equal(initialText(label), "demo");
  assert.equal(initialText(tags), "");
  assert.equal(tags.defaultLabel, "tuple []");
  const result = collect([count, factor, label, flag, tags, extra], { count: "3", factor: "2.0", label: "demo", flag: "false", tags: "", extra: "" });
  assert.deepEqual(result, { ok: true, kwargs: { count: 3, factor: 2, label: "demo", flag: false, extra: null } });
  const refused = collect([count, factor], { count: "x", factor: "y" });
  assert.ok(!refused.ok && Object.keys(refused.errors).length === 2);
});

test("hash routes round-trip", () => {
  assert.deepEqual(parseRoute(""), { page: "workflows" });
  assert.deepEqual(parseRoute("#/"), { page: "workflows" });
  assert.deepEqual(parseRoute(href.workflow("pkg.mod", "flow")), { page: "workflow", module: "pkg.mod", name: "flow" });
  assert.deepEqual(parseRoute(href.runs()), { page: "runs" });
  assert.deepEqual(parseRoute(href.run("R1")), { page: "run", runId: "R1", stepId: null });
  assert.equal(href.step("R1", "R1:4"), "#/runs/R1/steps/R1:4");
  assert.deepEqual(parseRoute(href.step("R1", "R1:4")), { page: "run", runId: "R1", stepId: "R1:4" });
  assert.deepEqual(parseRoute("#/workers"), { page: "workers" });
  assert.deepEqual(parseRoute("#/queue"), { page: "queue" });
  assert.deepEqual(parseRoute(href.pools()), { page: "pools" });
  assert.equal(parseRoute("#/nowhere").page, "missing");
});
