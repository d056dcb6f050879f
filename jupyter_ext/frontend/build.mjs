// Builds every output of the front-end (README.md lists them) with esbuild, in a few seconds:
//   node build.mjs            production build (minified), then the JupyterLab extension (lab/)
//   node build.mjs --no-lab   the esbuild outputs only
//   node build.mjs --watch    rebuild the esbuild outputs on change (not minified, with source maps)
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..");
const args = new Set(process.argv.slice(2));
const watch = args.has("--watch");
const withLab = !watch && !args.has("--no-lab");

// One ESM bundle per output; the CSS each one imports lands beside it with the same name.
const outputs = [
  { entry: "src/main-studio.tsx", out: "server/static/studio.js" },
  { entry: "src/plotly-entry.ts", out: "server/static/plotly.js" },
  { entry: "src/widget/index.tsx", out: "coflux/static/runview.js" },
];

function options({ entry, out }) {
  return {
    entryPoints: [join(here, entry)],
    outfile: join(repo, out),
    bundle: true,
    format: "esm",
    target: ["es2021", "chrome100", "firefox100", "safari15"],
    jsx: "automatic",
    jsxImportSource: "preact",
    minify: !watch,
    sourcemap: watch ? "inline" : false,
    legalComments: "none",
    logLevel: "warning",
    define: { "process.env.NODE_ENV": watch ? '"development"' : '"production"' },
    loader: { ".svg": "text" },
  };
}

function present(output) {
  if (existsSync(join(here, output.entry))) return true;
  console.warn(`build: skipping ${output.out}: ${output.entry} does not exist yet`);
  return false;
}

async function buildOnce() {
  const started = Date.now();
  const wanted = outputs.filter(present);
  const results = await Promise.all(wanted.map((o) => esbuild.build({ ...options(o), metafile: true })));
  for (const result of results) {
    for (const [file, info] of Object.entries(result.metafile.outputs)) {
      console.log(`  ${relative(repo, join(here, file)).padEnd(32)} ${(info.bytes / 1024).toFixed(1).padStart(8)} KiB`);
    }
  }
  console.log(`build: esbuild outputs in ${Date.now() - started} ms`);
}

async function buildWatch() {
  const contexts = await Promise.all(outputs.filter(present).map((o) => esbuild.context({
    ...options(o),
    plugins: [{ name: "report", setup(b) { b.onEnd((r) => console.log(`rebuilt ${o.out} (${r.errors.length} errors)`)); } }],
  })));
  await Promise.all(contexts.map((c) => c.watch()));
  console.log("watching src/ (Ctrl-C stops)");
}

// The JupyterLab extension has its own package (lab/package.json: JupyterLab's packages and its
// builder); it imports the shared sources from ../src and resolves preact etc. from here.
function buildLab() {
  const lab = join(here, "lab");
  if (!existsSync(join(lab, "package.json"))) {
    console.warn("build: no lab/package.json yet: the JupyterLab extension is not built");
    return;
  }
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const run = (...cmd) => {
    console.log(`build: npm --prefix lab ${cmd.join(" ")}`);
    const r = spawnSync(npm, ["--prefix", lab, ...cmd], { stdio: "inherit" });
    if (r.status !== 0) throw new Error(`npm --prefix lab ${cmd.join(" ")} failed (${r.status ?? r.signal})`);
  };
  const lock = join(lab, "package-lock.json");
  const installed = join(lab, "node_modules", ".package-lock.json");
  if (!existsSync(installed) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(installed).mtimeMs)) {
    run(existsSync(lock) ? "ci" : "install", "--no-audit", "--no-fund");
  }
  run("run", "build");
}

mkdirSync(join(repo, "server", "static"), { recursive: true });
mkdirSync(join(repo, "coflux", "static"), { recursive: true });
try {
  if (watch) {
    await buildWatch();
  } else {
    await buildOnce();
    if (withLab) buildLab();
  }
} catch (error) {
  console.error(String(error?.message ?? error));
  process.exit(1);
}
