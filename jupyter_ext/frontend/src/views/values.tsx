// Rendering wire values (arguments, results, log values): plain JSON as is, typed wrappers
// ({"$": ...}) as what they stand for, execution refs and assets as links, blobs with their size.
import type { ComponentChildren, JSX } from "preact";
import type { WireRef, WireValue } from "../api/types";
import { formatBytes, runOfId, stepOfExecution } from "./format";
import { useView } from "./context";

type Data = unknown;
const MAX_ITEMS = 200; // items shown per list/object before "… N more"
const INLINE_CHARS = 120;

function refId(ref: WireRef | undefined): string {
  if (ref == null) return "";
  if (typeof ref === "string") return ref;
  return String(ref.id ?? ref.execution ?? "");
}

function refLabel(ref: WireRef | undefined): string {
  if (ref == null || typeof ref === "string") return "";
  const target = typeof ref.target === "string" ? ref.target : "";
  return target;
}

/** A link to an execution: inside this run it selects the step, else it opens the other run. */
export function ExecutionLink({ id, label }: { id: string; label?: string }): JSX.Element {
  const { model, selectStep, openRun } = useView();
  const inRun = runOfId(id) === model.runId;
  const onClick = (event: Event) => {
    event.preventDefault();
    if (inRun) selectStep(stepOfExecution(id));
    else if (openRun) openRun(runOfId(id));
  };
  const found = inRun ? model.execution(id) : undefined;
  const text = label || (found ? `${found.step.target} ${id}` : id);
  return <a href="#" class="cf-link cf-exec-link" data-execution={id} onClick={onClick}
    title={inRun ? "show this step" : "open this run"}>↪ {text}</a>;
}

export function BlobLink({ blobKey, size, label }: { blobKey: string; size?: number; label: string }): JSX.Element {
  const { api } = useView();
  return <a class="cf-link cf-blob-link" href={api.blobUrl(blobKey)} target="_blank" rel="noopener"
    download>{label}{size != null ? ` (${formatBytes(size)})` : ""}</a>;
}

interface AssetData { id?: string; name?: string | null; entries?: [string, string, number, unknown][] }

function AssetValue({ data }: { data: AssetData }): JSX.Element {
  const entries = Array.isArray(data.entries) ? data.entries : [];
  return <span class="cf-value-asset">
    <span class="cf-tag">asset</span> {data.name || data.id}
    {" "}({entries.length} file{entries.length === 1 ? "" : "s"})
    {entries.slice(0, 5).map(([path, key, size]) => <span key={path}> <BlobLink blobKey={key} size={size} label={path} /></span>)}
    {entries.length > 5 ? ` … ${entries.length - 5} more` : ""}
  </span>;
}

function Tagged({ tag, children }: { tag: string; children: ComponentChildren }): JSX.Element {
  return <span class="cf-value-tagged"><span class="cf-tag">{tag}</span> {children}</span>;
}

function b64Length(b64: string): number {
  const pad = b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0;
  return Math.floor((b64.length * 3) / 4) - pad;
}

function frameLabel(obj: Record<string, unknown>): string {
  const columns = Array.isArray(obj.columns) ? obj.columns.map(String) : [];
  const more = Number(obj.ncolumns ?? columns.length) - columns.length;
  return `${String(obj.rows ?? "?")} rows × ${String(obj.ncolumns ?? columns.length)} columns: ${columns.join(", ")}${more > 0 ? ", …" : ""}`;
}

/** One value, recursively (lists and objects fold open with <details>). */
function DataView({ data, refs, depth }: { data: Data; refs: WireRef[]; depth: number }): JSX.Element {
  if (data === null) return <span class="cf-v-null">None</span>;
  if (typeof data === "boolean") return <span class="cf-v-bool">{data ? "True" : "False"}</span>;
  if (typeof data === "number") return <span class="cf-v-num">{String(data)}</span>;
  if (typeof data === "string") return <span class="cf-v-str">{JSON.stringify(data)}</span>;
  if (Array.isArray(data)) return <Items open="[" close="]" items={data} refs={refs} depth={depth} />;
  if (typeof data !== "object") return <span>{String(data)}</span>;
  const obj = data as Record<string, unknown>;
  const kind = obj.$;
  if (typeof kind !== "string") {
    return <Pairs pairs={Object.entries(obj)} refs={refs} depth={depth} />;
  }
  switch (kind) {
    case "ref": {
      const ref = refs[Number(obj.i)];
      return <ExecutionLink id={refId(ref)} label={refLabel(ref) ? `${refLabel(ref)} ${refId(ref)}` : undefined} />;
    }
    case "tuple":
      return <Items open="(" close=")" items={obj.items as Data[]} refs={refs} depth={depth} />;
    case "set": case "frozenset":
      return <Tagged tag={kind}><Items open="{" close="}" items={obj.items as Data[]} refs={refs} depth={depth} /></Tagged>;
    case "dict":
      return <Pairs pairs={(obj.items as [Data, Data][])} refs={refs} depth={depth} />;
    case "float": return <span class="cf-v-num">{String(obj.v)}</span>;
    case "datetime": case "date": case "time": case "uuid":
      return <Tagged tag={kind}>{String(obj.v)}</Tagged>;
    case "timedelta": return <Tagged tag="timedelta">{String(obj.v)} s</Tagged>;
    case "decimal": return <Tagged tag="Decimal">{String(obj.v)}</Tagged>;
    case "bytes": return <Tagged tag="bytes">{formatBytes(b64Length(String(obj.b64 ?? "")))}</Tagged>;
    case "pydantic": // a model as its JSON, tagged with its class's own name
      return <Tagged tag={String(obj.class ?? "model").split(".").pop() ?? "model"}>
        <DataView data={obj.v} refs={refs} depth={depth} />
      </Tagged>;
    case "dataframe":
      return <Tagged tag="DataFrame">{frameLabel(obj)} ({formatBytes(b64Length(String(obj.b64 ?? "")))} Parquet)</Tagged>;
    case "pickle": return <Tagged tag="pickle">{String(obj.class ?? "object")} ({formatBytes(b64Length(String(obj.b64 ?? "")))})</Tagged>;
    case "blob":
      if (obj.format === "parquet") {
        return <Tagged tag="DataFrame">{frameLabel(obj)} <BlobLink blobKey={String(obj.key)} size={Number(obj.size)} label="Parquet" /></Tagged>;
      }
      return <Tagged tag={`blob ${String(obj.format ?? "")}`}>
        <BlobLink blobKey={String(obj.key)} size={Number(obj.size)} label={String(obj.class ?? obj.format ?? "download")} />
      </Tagged>;
    case "asset": return <AssetValue data={obj as AssetData} />;
    case "asset_entry":
      return <Tagged tag="asset entry"><BlobLink blobKey={String(obj.key)} size={Number(obj.size)} label={String(obj.path)} /></Tagged>;
    default:
      return <Tagged tag={kind}>{JSON.stringify(obj.v ?? obj)}</Tagged>;
  }
}

function Items({ open, close, items, refs, depth }: { open: string; close: string; items: Data[]; refs: WireRef[]; depth: number }): JSX.Element {
  if (!items || items.length === 0) return <span>{open}{close}</span>;
  const shown = items.slice(0, MAX_ITEMS);
  const body = <span class="cf-v-items">{shown.map((item, i) =>
    <div class="cf-v-item" key={i}><DataView data={item} refs={refs} depth={depth + 1} />,</div>)}
    {items.length > MAX_ITEMS ? <div class="cf-v-item cf-muted">… {items.length - MAX_ITEMS} more</div> : null}</span>;
  return <details class="cf-v-fold" open={depth < 2 && items.length <= 20}>
    <summary>{open}{items.length} item{items.length === 1 ? "" : "s"}{close}</summary>{open}{body}{close}
  </details>;
}

function Pairs({ pairs, refs, depth }: { pairs: [Data, Data][]; refs: WireRef[]; depth: number }): JSX.Element {
  if (!pairs || pairs.length === 0) return <span>{"{}"}</span>;
  const shown = pairs.slice(0, MAX_ITEMS);
  const body = <span class="cf-v-items">{shown.map(([k, v], i) =>
    <div class="cf-v-item" key={i}>
      {typeof k === "string" ? <span class="cf-v-key">{JSON.stringify(k)}</span> : <DataView data={k} refs={refs} depth={depth + 1} />}
      : <DataView data={v} refs={refs} depth={depth + 1} />,</div>)}
    {pairs.length > MAX_ITEMS ? <div class="cf-v-item cf-muted">… {pairs.length - MAX_ITEMS} more</div> : null}</span>;
  return <details class="cf-v-fold" open={depth < 2 && pairs.length <= 20}>
    <summary>{"{"}{pairs.length} key{pairs.length === 1 ? "" : "s"}{"}"}</summary>{"{"}{body}{"}"}
  </details>;
}

/** A wire value as a block (step panel: arguments, result). */
export function WireValueView({ value }: { value: WireValue | null | undefined }): JSX.Element {
  if (value == null) return <span class="cf-muted">none</span>;
  return <div class="cf-value"><DataView data={value.v} refs={value.refs ?? []} depth={0} /></div>;
}

/** Plain text of simple data (for inline log values); null when it needs a richer rendering. */
export function plainText(data: Data): string | null {
  if (data === null) return "None";
  if (typeof data === "boolean") return data ? "True" : "False";
  if (typeof data === "number") return String(data);
  if (typeof data === "string") return data;
  if (typeof data === "object" && !Array.isArray(data)) {
    const kind = (data as Record<string, unknown>).$;
    if (kind === "float" || kind === "datetime" || kind === "date" || kind === "time" || kind === "uuid" || kind === "decimal") {
      return String((data as Record<string, unknown>).v);
    }
    if (kind === undefined) {
      try {
        const text = JSON.stringify(data);
        return text.length <= INLINE_CHARS ? text : text.slice(0, INLINE_CHARS - 1) + "…";
      } catch { return null; }
    }
    return null;
  }
  if (Array.isArray(data) && data.every((x) => x === null || typeof x !== "object")) {
    const text = JSON.stringify(data);
    return text.length <= INLINE_CHARS ? text : text.slice(0, INLINE_CHARS - 1) + "…";
  }
  return null;
}

/** A value inside a line of text (a log line): strings without quotes, refs and assets as links. */
export function InlineValue({ value }: { value: WireValue }): JSX.Element {
  const text = plainText(value.v);
  if (text !== null) return <span class="cf-inline-value">{text}</span>;
  const data = value.v as Record<string, unknown>;
  const refs = value.refs ?? [];
  if (data && typeof data === "object" && !Array.isArray(data)) {
    if (data.$ === "ref") {
      const ref = refs[Number(data.i)];
      return <ExecutionLink id={refId(ref)} label={refLabel(ref) ? `${refLabel(ref)} ${refId(ref)}` : undefined} />;
    }
    if (data.$ === "asset") return <AssetValue data={data as AssetData} />;
  }
  return <span class="cf-inline-value cf-inline-rich"><DataView data={value.v} refs={refs} depth={3} /></span>;
}
