// The run dialog: one typed input per parameter, checked before submit; opens the new run.
import { useEffect, useRef, useState } from "preact/hooks";
import type { JSX } from "preact";
import type { CofluxClient } from "../api/client";
import type { WorkflowInfo } from "../api/types";
import { collectArguments, fieldOfPath, fieldsOf, initialSchemaValue, initialText, parseField, type Field } from "./args";
import { SchemaForm, describe, idOf, validate } from "../views/schemaform";
import { href, navigate } from "./route";

const KIND_HINT: Record<Field["kind"], string> = {
  int: "integer", float: "number", str: "text", bool: "true / false", list: "JSON list", dict: "JSON object",
  json: "JSON value",
};

function FieldInput({ field, value, error, onInput }:
  { field: Field; value: string; error: string; onInput: (v: string) => void }): JSX.Element {
  const id = `cf-arg-${field.name}`;
  const describedBy = `${id}-hint${error ? ` ${id}-error` : ""}`;
  const common = {
    id, name: field.name, "aria-invalid": error ? true : undefined, "aria-describedby": describedBy,
    class: `cf-input${error ? " cf-invalid" : ""}`,
  };
  let input: JSX.Element;
  if (field.kind === "bool") {
    input = (
      <select {...common} value={value} onChange={(e) => onInput((e.target as HTMLSelectElement).value)}>
        {(field.hasDefault || field.optional) && <option value="">{field.hasDefault ? `default (${field.defaultLabel})` : "None"}</option>}
        <option value="true">true</option>
        <option value="false">false</option>
      </select>
    );
  } else if (field.kind === "list" || field.kind === "dict" || field.kind === "json") {
    input = <textarea {...common} rows={value.length > 60 ? 4 : 2} spellcheck={false} value={value}
      placeholder={field.hasDefault ? `default: ${field.defaultLabel}` : field.kind === "list" ? "[1, 2, 3]" : field.kind === "dict" ? '{"key": 1}' : '3, "text", [1, 2]'}
      onInput={(e) => onInput((e.target as HTMLTextAreaElement).value)} />;
  } else {
    input = <input {...common} type="text" value={value} spellcheck={false}
      inputMode={field.kind === "int" ? "numeric" : field.kind === "float" ? "decimal" : undefined}
      placeholder={field.hasDefault ? `default: ${field.defaultLabel}` : field.optional ? "empty for None" : ""}
      onInput={(e) => onInput((e.target as HTMLInputElement).value)} />;
  }
  return (
    <div class="cf-field">
      <label for={id}><code>{field.name}</code> <span class="cf-muted">{field.annotation || "any"}</span></label>
      {input}
      <div id={`${id}-hint`} class="cf-hint">
        {KIND_HINT[field.kind]}{field.optional ? ", or empty for None" : ""}
        {field.hasDefault ? `; empty uses the default (${field.defaultLabel})` : field.optional ? "" : "; required"}
      </div>
      {error && <div id={`${id}-error`} class="cf-field-error" role="alert">{error}</div>}
    </div>
  );
}

/** A parameter with a JSON Schema: its fields are built from it (lists, objects, choices). */
function SchemaField({ field, value, errors, disabled, onChange }: {
  field: Field; value: unknown; errors: Record<string, string>; disabled: boolean; onChange: (v: unknown) => void;
}): JSX.Element {
  const schema = field.schema!;
  const fallback = field.hasDefault && field.defaultValue === undefined; // a default that is not JSON
  return (
    <div class="cf-field cf-schema-field" data-param={field.name}>
      <label for={idOf(field.name, "cf-arg-")}><code>{field.name}</code> <span class="cf-muted">{field.annotation || "any"}</span></label>
      <SchemaForm schema={schema} value={value} onChange={onChange} disabled={disabled} label={field.name} errors={errors}
        idPrefix="cf-arg-" />
      <div class="cf-hint">{describe(schema)}
        {fallback ? `; left empty, the default (${field.defaultLabel})` : field.hasDefault ? `; default ${field.defaultLabel}` : ""}</div>
    </div>
  );
}

export function RunDialog({ api, workflow, workspace, onClose }:
  { api: CofluxClient; workflow: WorkflowInfo; workspace: string; onClose: () => void }): JSX.Element {
  const fields = fieldsOf(workflow.parameters ?? []);
  const [texts, setTexts] = useState<Record<string, string>>(() =>
    Object.fromEntries(fields.map((f) => [f.name, initialText(f)])));
  const [values, setValues] = useState<Record<string, unknown>>(() =>
    Object.fromEntries(fields.filter((f) => f.schema).map((f) => [f.name, initialSchemaValue(f)])));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [failure, setFailure] = useState("");
  const [busy, setBusy] = useState(false);
  const box = useRef<HTMLFormElement>(null);

  useEffect(() => {
    const first = box.current?.querySelector<HTMLElement>("input, textarea, select, button[type=submit]");
    first?.focus();
    const onKey = (e: KeyboardEvent) => { if (e.key === "Escape") onClose(); };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  const update = (name: string, value: string) => {
    setTexts((t) => ({ ...t, [name]: value }));
    if (errors[name]) {
      const field = fields.find((f) => f.name === name)!;
      const parsed = parseField(field, value);
      setErrors((e) => {
        const next = { ...e };
        if (parsed.ok) delete next[name];
        else next[name] = parsed.message;
        return next;
      });
    }
  };

  const updateValue = (field: Field, value: unknown) => {
    setValues((v) => ({ ...v, [field.name]: value }));
    if (Object.keys(errors).some((path) => fieldOfPath(path) === field.name)) {
      setErrors((e) => ({
        ...Object.fromEntries(Object.entries(e).filter(([path]) => fieldOfPath(path) !== field.name)),
        ...(value === undefined && field.hasDefault ? {} : validate(field.schema!, value, field.name)),
      }));
    }
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    setFailure("");
    const result = collectArguments(fields, texts, values);
    if (!result.ok) {
      setErrors(result.errors);
      const path = Object.keys(result.errors)[0];
      const first = fields.find((f) => fieldOfPath(path) === f.name);
      if (first) document.getElementById(first.schema ? idOf(path, "cf-arg-") : `cf-arg-${first.name}`)?.focus();
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      const reply = await api.submit(workflow.module, workflow.name, [], result.kwargs, workspace);
      onClose();
      navigate(href.run(reply.run));
    } catch (error) {
      setFailure(error instanceof Error ? error.message : String(error));
    } finally {
      setBusy(false);
    }
  };

  const count = new Set(Object.keys(errors).map(fieldOfPath)).size;
  return (
    <div class="cf-modal-backdrop" onClick={(e) => { if (e.target === e.currentTarget) onClose(); }}>
      <div class="cf-modal cf-run-dialog" role="dialog" aria-modal="true" aria-labelledby="cf-run-title">
      <form ref={box} onSubmit={submit} noValidate>
        <h2 id="cf-run-title">Run {workflow.name} <span class="cf-muted">{workflow.module} · {workspace}</span></h2>
        {workflow.instruction && <p class="cf-doc">{workflow.instruction.split(/\n\s*\n/, 1)[0]}</p>}
        {fields.length === 0 && <p class="cf-muted">This workflow takes no arguments.</p>}
        {fields.map((f) => f.schema
          ? <SchemaField field={f} value={values[f.name]} errors={errors} disabled={busy} onChange={(v) => updateValue(f, v)} />
          : <FieldInput field={f} value={texts[f.name] ?? ""} error={errors[f.name] ?? ""} onInput={(v) => update(f.name, v)} />)}
        {count > 0 && <p class="cf-error" role="alert">{count === 1 ? "One argument needs" : `${count} arguments need`} fixing before the run can start.</p>}
        {failure && <p class="cf-error" role="alert">The server refused the run: {failure}</p>}
        <div class="cf-modal-actions">
          <button type="button" class="cf-button" onClick={onClose}>Cancel</button>
          <button type="submit" class="cf-button cf-primary" disabled={busy}>{busy ? "Starting…" : "Start run"}</button>
        </div>
      </form>
      </div>
    </div>
  );
}
