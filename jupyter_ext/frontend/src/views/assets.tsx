// Every asset of the run (name, entries, sizes, the step that made it), with a preview of the
// chosen entry by MIME type / extension and a download link per entry.
import type { JSX } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import type { AssetEntryInfo, AssetInfo } from "../api/types";
import type { CofluxApi } from "../store/types";
import { useModelVersion, useView } from "./context";
import { formatBytes, stepOfExecution } from "./format";
import { Markdown } from "./markdown";

const TEXT_BYTES = 256 * 1024; // previews read at most this much of a blob
const CSV_ROWS = 50;

/** The asset as the view needs it, whichever field names the server used. */
interface Entry { path: string; key: string; size: number; type: string }
interface Asset { id: string; name: string | null; execution: string; entries: Entry[]; size: number }

function normalise(a: AssetInfo): Asset {
  const raw = a as AssetInfo & { execution?: string };
  const entries = (a.entries ?? []).map((e) => {
    const r = e as AssetEntryInfo & { blob?: string; key?: string };
    const type = typeof e.metadata?.type === "string" ? (e.metadata.type as string) : "";
    return { path: e.path, key: r.blob_key ?? r.blob ?? r.key ?? "", size: e.size, type };
  });
  return { id: a.id, name: a.name, execution: a.execution_id ?? raw.execution ?? "", entries,
    size: entries.reduce((n, e) => n + (e.size || 0), 0) };
}

export type PreviewKind = "image" | "csv" | "markdown" | "json" | "text" | "none";

export function previewKind(entry: { path: string; type: string }): PreviewKind {
  const ext = entry.path.toLowerCase().split(".").pop() ?? "";
  const type = entry.type.toLowerCase();
  if (type.startsWith("image/") || ["png", "jpg", "jpeg", "gif", "webp", "svg", "bmp"].includes(ext)) return "image";
  if (type === "text/csv" || ext === "csv" || ext === "tsv") return "csv";
  if (type === "text/markdown" || ext === "md" || ext === "markdown") return "markdown";
  if (type === "application/json" || ext === "json") return "json";
  if (type.startsWith("text/") || ["txt", "log", "py", "yaml", "yml", "toml", "ini", "cfg", "xml", "html", "sql", "sh"].includes(ext)) return "text";
  return "none";
}

/** CSV (or TSV) rows, with quoted fields; enough for a preview table. */
export function parseCsv(text: string, separator = ",", maxRows = CSV_ROWS + 1): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length && rows.length < maxRows; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === "") quoted = true;
    else if (c === separator) { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field); field = ""; rows.push(row); row = [];
    } else field += c;
  }
  if ((field || row.length) && rows.length < maxRows) { row.push(field); rows.push(row); }
  return rows;
}

async function fetchText(api: CofluxApi, entry: Entry): Promise<{ text: string; truncated: boolean }> {
  const response = await fetch(api.blobUrl(entry.key), {
    credentials: "same-origin", headers: entry.size > TEXT_BYTES ? { Range: `bytes=0-${TEXT_BYTES - 1}` } : {},
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const text = await response.text();
  return { text, truncated: entry.size > TEXT_BYTES };
}

function Preview({ entry }: { entry: Entry }): JSX.Element {
  const { api } = useView();
  const kind = previewKind(entry);
  const [state, setState] = useState<{ text?: string; truncated?: boolean; error?: string }>({});
  useEffect(() => {
    setState({});
    if (kind === "image" || kind === "none") return undefined;
    let live = true;
    fetchText(api, entry).then((r) => { if (live) setState(r); }, (e: unknown) => { if (live) setState({ error: String(e) }); });
    return () => { live = false; };
  }, [entry.key, kind]);

  if (kind === "image") {
    return <div class="cf-preview cf-preview-image"><img src={api.blobUrl(entry.key)} alt={entry.path} /></div>;
  }
  if (kind === "none") return <div class="cf-preview cf-muted">no preview for this type ({entry.type || "unknown"}); download it</div>;
  if (state.error) return <div class="cf-preview cf-error-text">preview failed: {state.error}</div>;
  if (state.text === undefined) return <div class="cf-preview cf-muted">loading…</div>;
  const note = state.truncated ? <div class="cf-muted">(the first {formatBytes(TEXT_BYTES)} only)</div> : null;
  if (kind === "csv") {
    const rows = parseCsv(state.text, entry.path.toLowerCase().endsWith(".tsv") ? "\t" : ",");
    const [head, ...body] = rows;
    return <div class="cf-preview cf-preview-csv">
      <table class="cf-table">
        {head ? <thead><tr>{head.map((h, i) => <th key={i} scope="col">{h}</th>)}</tr></thead> : null}
        <tbody>{body.slice(0, CSV_ROWS).map((r, i) => <tr key={i}>{r.map((c, j) => <td key={j}>{c}</td>)}</tr>)}</tbody>
      </table>
      {body.length >= CSV_ROWS ? <div class="cf-muted">first {CSV_ROWS} rows</div> : null}{note}
    </div>;
  }
  if (kind === "markdown") return <div class="cf-preview cf-preview-markdown"><Markdown text={state.text} />{note}</div>;
  if (kind === "json") {
    let pretty = state.text;
    try { pretty = JSON.stringify(JSON.parse(state.text), null, 2); } catch { /* shown as it is */ }
    return <div class="cf-preview cf-preview-json"><pre>{pretty}</pre>{note}</div>;
  }
  return <div class="cf-preview cf-preview-text"><pre>{state.text}</pre>{note}</div>;
}

export function AssetsView(): JSX.Element {
  const { api, model, selectStep } = useView();
  const version = useModelVersion(model);
  const raw = model.assets();
  const assets = useMemo(() => raw.map(normalise), [raw, raw.length, version]);
  const [chosen, setChosen] = useState<{ asset: string; path: string } | null>(null);
  if (!assets.length) return <div class="cf-assets cf-empty">no assets yet</div>;
  // Without a choice, preview the first previewable entry.
  let current: Entry | undefined;
  if (chosen) current = assets.find((a) => a.id === chosen.asset)?.entries.find((e) => e.path === chosen.path);
  if (!current) {
    for (const a of assets) { current = a.entries.find((e) => previewKind(e) !== "none"); if (current) break; }
  }
  return <div class="cf-assets" data-assets={assets.length}>
    <ul class="cf-asset-list" aria-label="assets">
      {assets.map((a) => {
        const step = model.step(stepOfExecution(a.execution));
        return <li key={a.id} class="cf-asset" data-asset={a.id}>
          <div class="cf-asset-head">
            <strong>{a.name || a.id}</strong>
            <span class="cf-muted"> {a.entries.length} file{a.entries.length === 1 ? "" : "s"}, {formatBytes(a.size)}</span>
            {step ? <> · made by <a href="#" class="cf-link" onClick={(e) => { e.preventDefault(); selectStep(step.id); }}>
              {step.target} #{step.number}</a></> : null}
          </div>
          <ul class="cf-asset-entries">
            {a.entries.slice(0, 200).map((e) => {
              const isCurrent = current === e;
              return <li key={e.path} class={isCurrent ? "cf-selected" : ""}>
                <button type="button" class="cf-linkish" aria-pressed={isCurrent}
                  onClick={() => setChosen({ asset: a.id, path: e.path })}>{e.path}</button>
                <span class="cf-muted"> {formatBytes(e.size)} {e.type}</span>
                {" "}<a class="cf-link" href={api.blobUrl(e.key)} download={e.path.split("/").pop()} aria-label={`download ${e.path}`}>⤓ download</a>
              </li>;
            })}
            {a.entries.length > 200 ? <li class="cf-muted">… {a.entries.length - 200} more</li> : null}
          </ul>
        </li>;
      })}
    </ul>
    <div class="cf-asset-preview" aria-live="polite">
      {current ? <><div class="cf-preview-title">{current.path}</div><Preview key={current.key} entry={current} /></> :
        <div class="cf-muted">no entry to preview</div>}
    </div>
  </div>;
}
