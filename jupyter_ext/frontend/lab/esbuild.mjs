// Step 1 of the Lab build: bundle the plugin and the shared sources (../src, with preact etc. from
// ../node_modules) into lib/index.js + lib/index.css. JupyterLab's own packages stay imports, so
// step 2 (@jupyter/builder) links them to Lab's shared singletons through module federation.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import * as esbuild from "esbuild";

const result = await esbuild.build({
  entryPoints: ["src/index.ts"],
  outfile: "lib/index.js",
  bundle: true,
  format: "esm",
  target: "es2021",
  jsx: "automatic",
  jsxImportSource: "preact",
  external: ["@jupyterlab/*", "@lumino/*"],
  loader: { ".svg": "text" },
  define: { "process.env.NODE_ENV": '"production"' },
  legalComments: "none",
  logLevel: "warning",
  write: false, // not minified: rspack minifies, and the import() comments below must survive
});

// Runtime-URL imports (plotly.js from the server, marked `@vite-ignore` in the shared code) must
// stay native import()s: without webpackIgnore, rspack turns them into an empty context module.
const IGNORE = /import\(\s*\/\* @vite-ignore \*\//g;
for (const file of result.outputFiles) {
  let text = file.text;
  if (file.path.endsWith(".js")) text = text.replace(IGNORE, "import(/* webpackIgnore: true */ /* @vite-ignore */");
  mkdirSync(dirname(file.path), { recursive: true });
  writeFileSync(file.path, text);
}
