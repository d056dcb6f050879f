// Prompts raised by running code (cf.Prompt), shown where a person can answer: the run view
// (right in the notebook cell that started the run), the step panel, Studio's and the Lab
// panel's "Inputs" lists. The form is THE schema form (schemaform.tsx); an approval (no schema)
// is two buttons. Whether this user may answer comes from the server (`may_respond`: the
// prompt's `requires` against the user's tags); others see the prompt read-only.
import type { ComponentChildren, JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import type { InputDetail, InputSummary, WireValue } from "../api/types";
import type { CofluxApi } from "../store/types";
import { formatDateTime, formatDuration, requiresText } from "./format";
import { Markdown } from "./markdown";
import { SchemaForm, Unparsed, hasSchema, initialValue, validate, type FieldErrors, type JSONSchema } from "./schemaform";
import { InlineValue, WireValueView } from "./values";

const PLACEHOLDER = /\{\{\{([A-Za-z_]\w*)\}\}\}|\{\{([A-Za-z_]\w*)\}\}|\{([A-Za-z_]\w*)\}/g;

function rawString(value: WireValue | undefined): string {
  if (!value) return "";
  return typeof value.v === "string" ? value.v : JSON.stringify(value.v);
}

/** The template as Markdown: `{k}` a value inline, `{{k}}` a value as a block, `{{{k}}}` the
 * value's text as Markdown. Values keep their links (executions, assets, blobs). */
export function PromptText({ template, placeholders }: { template: string; placeholders: Record<string, WireValue> }): JSX.Element {
  // Markdown placeholders are text before rendering; blocks split the Markdown into pieces.
  const text = template.replace(/\{\{\{([A-Za-z_]\w*)\}\}\}/g, (all, key: string) => key in placeholders ? rawString(placeholders[key]) : all);
  const pieces: ComponentChildren[] = [];
  let last = 0;
  let key = 0;
  const blockRe = /\{\{([A-Za-z_]\w*)\}\}/g;
  for (let m = blockRe.exec(text); m; m = blockRe.exec(text)) {
    if (!(m[1] in placeholders)) continue;
    if (m.index > last) pieces.push(<MarkdownWithValues key={key++} text={text.slice(last, m.index)} placeholders={placeholders} />);
    pieces.push(<div key={key++} class="cf-prompt-block"><WireValueView value={placeholders[m[1]]} /></div>);
    last = m.index + m[0].length;
  }
  if (last < text.length) pieces.push(<MarkdownWithValues key={key} text={text.slice(last)} placeholders={placeholders} />);
  return <div class="cf-prompt-text">{pieces}</div>;
}

/** Markdown whose `{k}` placeholders are simple values as text, or (a link, an asset) as an
 * inline value after the paragraph. */
function MarkdownWithValues({ text, placeholders }: { text: string; placeholders: Record<string, WireValue> }): JSX.Element {
  const rich: string[] = [];
  const filled = text.replace(PLACEHOLDER, (all, _m: string, _b: string, key: string | undefined) => {
    if (!key || !(key in placeholders)) return all;
    const value = placeholders[key];
    const data = value.v;
    if (data === null || typeof data !== "object" || Array.isArray(data) || (data as Record<string, unknown>).$ === undefined) {
      return typeof data === "string" ? data : JSON.stringify(data);
    }
    rich.push(key);
    return `[${key}]`;
  });
  return <>
    <Markdown text={filled} />
    {rich.map((k) => <div key={k} class="cf-prompt-inline">{k}: <InlineValue value={placeholders[k]} /></div>)}
  </>;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** One prompt: its text, and its form (or its answer, once answered). */
export function PromptCard({ api, inputId, onDone }: { api: CofluxApi; inputId: string; onDone?: () => void }): JSX.Element {
  const [detail, setDetail] = useState<InputDetail | null>(null);
  const [loadError, setLoadError] = useState("");
  const [value, setValue] = useState<unknown>(undefined);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState("");
  const [busy, setBusy] = useState(false);
  const load = async () => {
    try {
      const found = await api.get<InputDetail>(`api/inputs/${inputId}`);
      setDetail(found);
      if (found.schema && hasSchema(found.schema as JSONSchema)) {
        setValue((v: unknown) => v !== undefined ? v : found.initial ?? initialValue(found.schema as JSONSchema));
      }
    } catch (e) { setLoadError(errorText(e)); }
  };
  useEffect(() => { void load(); }, [inputId]);
  if (loadError) return <div class="cf-prompt cf-error-text" role="alert">{loadError}</div>;
  if (!detail) return <div class="cf-prompt cf-muted">loading the prompt…</div>;
  const schema = detail.schema as JSONSchema | null;
  const pending = detail.state === "pending";
  const readOnly = !detail.may_respond;
  const [respondLabel, dismissLabel] = detail.actions ?? [schema ? "Respond" : "Approve", "Dismiss"];
  const act = async (what: "respond" | "dismiss") => {
    if (what === "respond" && schema) {
      const problems = validate(schema, value);
      setErrors(problems);
      if (Object.keys(problems).length > 0 || value instanceof Unparsed) {
        setMessage("fix the fields marked below");
        return;
      }
    }
    setBusy(true);
    setMessage(what === "respond" ? "sending…" : "dismissing…");
    try {
      await api.post(`api/inputs/${inputId}/${what}`, what === "respond" ? { value: schema ? value : null } : {});
      setMessage("");
      await load();
      onDone?.();
    } catch (e) {
      setMessage(errorText(e));
    } finally { setBusy(false); }
  };
  return <section class={`cf-prompt cf-prompt-${detail.state}`} data-input={detail.id} data-state={detail.state}
    aria-label={`prompt ${detail.title ?? detail.id}`}>
    <header class="cf-prompt-header">
      <span class="cf-prompt-icon" aria-hidden="true">✎</span>
      <strong class="cf-prompt-title">{detail.title ?? "Input requested"}</strong>
      <span class="cf-muted cf-prompt-id">{detail.id}</span>
      {detail.requires ? <span class="cf-muted">requires {requiresText(detail.requires)}</span> : null}
    </header>
    <PromptText template={detail.template} placeholders={detail.placeholders ?? {}} />
    {pending ? <>
      {schema && hasSchema(schema) ? <div class="cf-prompt-form">
        <SchemaForm schema={schema} value={value} onChange={(v) => { setValue(v); setErrors({}); }} disabled={readOnly || busy} errors={errors} />
      </div> : null}
      {readOnly ? <div class="cf-muted cf-prompt-readonly" role="note">read-only: answering needs {requiresText(detail.requires)}</div> :
        <div class="cf-prompt-actions">
          <button type="button" class="cf-button cf-primary cf-prompt-respond" disabled={busy} onClick={() => void act("respond")}>{respondLabel}</button>
          <button type="button" class="cf-button cf-prompt-dismiss" disabled={busy} onClick={() => void act("dismiss")}>{dismissLabel}</button>
          {message ? <span class="cf-muted cf-prompt-message" role="status">{message}</span> : null}
        </div>}
    </> : <div class="cf-prompt-answer">
      <span class={`cf-badge cf-prompt-state cf-tone-${detail.state === "responded" ? "ok" : "warn"}`}>{detail.state}</span>
      {detail.by ? <span> by <strong>{detail.by}</strong></span> : null}
      {detail.responded_at ? <span class="cf-muted"> at {formatDateTime(detail.responded_at)}</span> : null}
      {detail.state === "responded" && detail.value !== null && detail.value !== undefined ?
        <pre class="cf-prompt-value">{JSON.stringify(detail.value, null, 2)}</pre> : null}
    </div>}
  </section>;
}

/** The pending prompts of a run, as forms (the run view shows them above its tabs). */
export function PendingPrompts({ api, inputs }: { api: CofluxApi; inputs: InputSummary[] }): JSX.Element | null {
  const pending = inputs.filter((i) => i.state === "pending");
  if (pending.length === 0) return null;
  return <div class="cf-prompts" role="region" aria-label="inputs requested">
    {pending.map((i) => <PromptCard key={i.id} api={api} inputId={i.id} />)}
  </div>;
}

/** Pending prompts of every run (Studio's Inputs page, the Lab panel's list): run, step, age,
 * title; `onOpen` opens one (its run's step panel holds the form). */
export function InputsList({ inputs, onOpen, now, compact = false }: {
  inputs: InputDetail[]; onOpen: (input: InputDetail) => void; now: number; compact?: boolean;
}): JSX.Element {
  if (inputs.length === 0) return <div class="cf-empty cf-inputs-empty">No pending inputs.</div>;
  if (compact) { // a narrow side panel: one line of title and button, one of run, step and age
    return <ul class="cf-inputs-list cf-inputs-compact">{inputs.map((i) => <li key={i.id} data-input={i.id}>
      <div class="cf-inputs-row">
        <strong>{i.title ?? i.template.slice(0, 40)}</strong>
        <button type="button" class="cf-button cf-inputs-open" onClick={() => onOpen(i)}>{i.may_respond ? "Answer" : "View"}</button>
      </div>
      <div class="cf-muted cf-small">{i.step} · {formatDuration(Math.max(0, now - i.created_at))} ago</div>
    </li>)}</ul>;
  }
  return <table class="cf-table cf-inputs-list">
    <thead><tr><th>Title</th><th>Run</th><th>Step</th><th>Age</th><th /></tr></thead>
    <tbody>{inputs.map((i) => <tr key={i.id} data-input={i.id}>
      <td>{i.title ?? <span class="cf-muted">{i.template.slice(0, 40)}</span>}</td>
      <td><code>{i.run}</code></td>
      <td><code>{i.step}</code></td>
      <td class="cf-muted">{formatDuration(Math.max(0, now - i.created_at))}</td>
      <td><button type="button" class="cf-button cf-inputs-open" onClick={() => onOpen(i)}>{i.may_respond ? "Answer" : "View"}</button></td>
    </tr>)}</tbody>
  </table>;
}
