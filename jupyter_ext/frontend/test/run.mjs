// Unit tests of the pure parts (the run fold, the feed's ordering, argument parsing, routes):
// each test/*.test.ts is bundled for Node with esbuild, then run by node's own test runner.
// With --bench, test/bench.ts instead (figures of the run store, printed).
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "node_modules", ".cache", "coflux-tests");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const bench = process.argv.includes("--bench"); // npm run bench: the figures script instead
const tests = bench ? ["bench.ts"] : readdirSync(here).filter((f) => f.endsWith(".test.ts"));
await esbuild.build({
  entryPoints: tests.map((f) => join(here, f)),
  outdir: out,
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  jsx: "automatic",
  jsxImportSource: "preact",
  logLevel: "warning",
});
const files = tests.map((f) => join(out, f.replace(/\.ts$/, ".mjs")));
const args = bench ? files : ["--test", "--test-reporter=spec", ...files];
const result = spawnSync(process.execPath, args, { stdio: "inherit" });
process.exit(result.status ?? 1);
