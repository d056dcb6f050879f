// The schema form's pure parts: validation messages by path, and the values an empty form starts from.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Unparsed, describe, hasSchema, initialValue, validate } from "../src/views/schemaform";
import { collectArguments, fieldsOf, initialSchemaValue } from "../src/studio/args";

const floats = { type: "array", items: { type: "number" } };
const model = {
  $defs: { Point: { type: "object", properties: { x: { type: "number" }, y: { type: "number", default: 0 } }, required: ["x"] } },
  type: "object", title: "Cfg",
  properties: {
    name: { type: "string" },
    points: { type: "array", items: { $ref: "#/$defs/Point" } },
    when: { anyOf: [{ type: "string", format: "date" }, { type: "null" }], default: null },
    color: { enum: ["red", "green"], type: "string" },
  },
  required: ["name", "points", "color"],
};

test("a list of numbers refuses a string item, naming it", () => {
  assert.deepEqual(validate(floats, [0.1, 2]), {});
  assert.deepEqual(validate(floats, [0.1, "x"], "a"), { "a[1]": 'expected number, got "x"' });
  assert.deepEqual(validate(floats, "abc", "a"), { a: 'expected list of number, got "abc"' });
  assert.deepEqual(validate(floats, [new Unparsed("x", "expected a number")], "a"), { "a[0]": "expected a number" });
});

test("nested models resolve $refs and report every bad field", () => {
  const good = { name: "n", points: [{ x: 1 }], color: "red", when: "2024-01-02" };
  assert.deepEqual(validate(model, good, "cfg"), {});
  const bad = validate(model, { name: 3, points: [{ y: 1 }, { x: "a" }], color: "blue", when: "2024-13" }, "cfg");
  assert.equal(bad["cfg.name"], "expected string, got 3");
  assert.equal(bad["cfg.points[0].x"], "a value is required");
  assert.match(bad["cfg.points[1].x"], /expected number/);
  assert.match(bad["cfg.color"], /one of "red", "green"/);
  assert.match(bad["cfg.when"], /date/);
});

test("integers, Optional, enums and a required value", () => {
  assert.deepEqual(validate({ type: "integer" }, 2), {});
  assert.match(validate({ type: "integer" }, 2.5, "n").n, /expected integer/);
  assert.deepEqual(validate({ anyOf: [{ type: "integer" }, { type: "null" }] }, null), {});
  assert.deepEqual(validate({ type: "integer" }, undefined, "n"), { n: "a value is required" });
  assert.deepEqual(validate({ enum: ["x", "y"] }, "y"), {});
});

test("empty forms start from sensible values", () => {
  assert.deepEqual(initialValue(floats), []);
  assert.deepEqual(initialValue(model), { name: "", points: [], when: null });
  assert.equal(initialValue({ anyOf: [{ type: "integer" }, { type: "null" }] }), null);
  assert.equal(initialValue({ type: "boolean" }), false);
  assert.equal(describe(floats), "list of number");
  assert.ok(!hasSchema({}) && !hasSchema(null) && hasSchema(floats));
});

test("run dialog arguments: schema fields validated, defaults kept as they are", () => {
  const [n, color, values] = fieldsOf([
    { name: "n", annotation: "int", schema: { type: "integer" }, default: { v: null } },
    // an enum default travels as a pickle: the form starts from its JSON form, from the schema
    { name: "color", annotation: "Color", default: { v: { $: "pickle", b64: "", class: "m.Color" } },
      schema: { enum: ["red", "green"], type: "string", default: "red" } },
    { name: "values", annotation: "list[float]", schema: floats },
  ]);
  assert.equal(n.defaultLabel, "None");
  assert.equal(initialSchemaValue(color), "red");
  assert.deepEqual(initialSchemaValue(values), []);
  const ok = collectArguments([n, color, values], {}, { n: null, color: "green", values: [1.5] });
  assert.deepEqual(ok, { ok: true, kwargs: { n: null, color: "green", values: [1.5] } }, "`n: int = None` as given");
  const bad = collectArguments([n, color, values], {}, { n: 2.5, color: "blue", values: [1, "x"] });
  assert.ok(!bad.ok);
  assert.deepEqual(Object.keys(bad.errors).sort(), ["color", "n", "values[1]"]);
});
