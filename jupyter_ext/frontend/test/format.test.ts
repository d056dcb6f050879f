// What the step panel says of the options and requires a step ran with.
import { test } from "node:test";
import assert from "node:assert/strict";
import { effectiveRequires, optionsText, requiresText } from "../src/views/format";

test("a step's requires are the run's under its own, an empty list removing a key", () => {
  assert.deepEqual(effectiveRequires({ gpu: ["A100"] }, undefined), { gpu: ["A100"] });
  assert.deepEqual(effectiveRequires({ gpu: ["A100"], region: ["eu"] }, { gpu: ["H100"] }),
    { gpu: ["H100"], region: ["eu"] });
  assert.deepEqual(effectiveRequires({ gpu: ["A100"] }, { gpu: [] }), {});
  assert.deepEqual(effectiveRequires(null, null), {});
});

test("requires are spelled as --requires takes them", () => {
  assert.equal(requiresText({ gpu: ["A100", "H100"], region: ["true"] }), "gpu:A100|H100, region");
  assert.equal(requiresText({ gpu: [] }), "");
});

test("options read as runs inspect shows them", () => {
  assert.equal(optionsText({ requires: { gpu: ["A100"] }, retries: { limit: 2, backoff: [0, 0] }, delay: 0.6 }),
    "requires gpu:A100, retries 2, delay 0.6 s");
  assert.equal(optionsText({ memo: false, retries: { limit: null, backoff: [1, 60] } }),
    "memo off, retries unlimited (backoff 1-60 s)");
  assert.equal(optionsText({ memo: [0, 2], cache: { max_age: 60 }, timeout: 3, defer: { params: null } }),
    "memo on arguments 1,3, timeout 3 s, cache 60 s, defer");
  assert.equal(optionsText({}), "");
  assert.equal(optionsText(null), "");
});
