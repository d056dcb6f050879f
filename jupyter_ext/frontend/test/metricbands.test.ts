// Bands of many series, the joined trace of each step, round ticks; the log filter's step choices.
import { test } from "node:test";
import assert from "node:assert/strict";
import { band, joined, niceStep, quantile, seriesName } from "../src/views/metricbands";
import { stepChoices } from "../src/views/fanout";
import type { StepModel } from "../src/store/types";

test("round tick steps for declared bounds", () => {
  assert.equal(niceStep(0, 100), 20);
  assert.equal(niceStep(0, 1), 0.2);
  assert.equal(niceStep(0, 10), 2);
  assert.equal(niceStep(0, 12.5), 2.5);
  assert.equal(niceStep(-50, 50), 20);
  assert.equal(niceStep(5, 5), 1);
});

test("a band is the min, median and max at each x (or chosen percentiles)", () => {
  const series = Array.from({ length: 5 }, (_, i) => ({ points: [[0, i], [1, i * 10]] as [number, number][] }));
  assert.deepEqual(band(series), { x: [0, 1], lo: [0, 0], mid: [2, 20], hi: [4, 40] });
  assert.deepEqual(band(series, "p25"), { x: [0, 1], lo: [1, 10], mid: [2, 20], hi: [3, 30] });
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  // Many distinct x values: computed over 400 slices.
  const wide = [{ points: Array.from({ length: 5000 }, (_, i) => [i * 0.37, i] as [number, number]) }];
  assert.equal(band(wide).x.length, 400);
});

test("each step's series joined into one trace with a gap between two", () => {
  const out = joined([{ name: "a", points: [[0, 1], [1, 2]] }, { name: "b", points: [[0, 3]] }]);
  assert.deepEqual(out.x, [0, 1, null, 0]);
  assert.deepEqual(out.y, [1, 2, null, 3]);
  assert.deepEqual(out.text, ["a", "a", "", "b"]);
  assert.equal(seriesName("loss", { target: "scale", number: 7 }, true), "loss (scale #7)");
  assert.equal(seriesName("loss", null, true, "R:7:1"), "loss (R:7:1)");
  assert.equal(seriesName("loss", null, false), "loss");
});

test("the log filter's steps: a fan-out is one choice", () => {
  const step = (number: number, target: string, parent: string | null) =>
    ({ id: `R:${number}`, number, module: "m", target, parent }) as StepModel;
  const steps = [step(1, "flow", null), ...Array.from({ length: 300 }, (_, i) => step(i + 2, "scale", "R:1:1")),
    step(302, "summarise", "R:1:1")];
  const choices = stepChoices(steps);
  assert.deepEqual(choices.map((c) => c.label), ["flow #1", "scale x300 (all)", "summarise #302"]);
  assert.equal(choices[1].members.length, 300);
});
