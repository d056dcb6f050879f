// The panel's run dialog, inline under the workflow (the sidebar is narrow: no modal). The typed
// argument entry is Studio's (studio/args.ts: fields from the signature, parsed and checked
// before submit), so both faces accept and refuse exactly the same input.
import { useEffect, useRef, useState } from "preact/hooks";
import type { CofluxClient } from "../../src/api/client";
import type { WorkflowInfo } from "../../src/api/types";
import { collectArguments, fieldOfPath, fieldsOf, initialSchemaValue, initialText, type Field } from "../../src/studio/args";
import { SchemaForm, describe, idOf, validate } from "../../src/views/schemaform";

const HINT: Record<Field["kind"], string> = {
  int: "integer", float: "number", str: "text", bool: "true / false", list: "JSON list", dict: "JSON object",
  json: "JSON value",
};

export function RunForm({ api, workflow, onSubmitted, onCancel }: {
  api: CofluxClient; workflow: WorkflowInfo; onSubmitted: (runId: string) => void; onCancel: () => void;
}) {
  const fields = fieldsOf(workflow.parameters ?? []);
  const [texts, setTexts] = useState<Record<string, string>>(() =>
    Object.fromEntries(fields.map((f) => [f.name, initialText(f)])));
  const [values, setValues] = useState<Record<string, unknown>>(() =>
    Object.fromEntries(fields.filter((f) => f.schema).map((f) => [f.name, initialSchemaValue(f)])));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [failure, setFailure] = useState("");
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);

  useEffect(() => { form.current?.querySelector<HTMLElement>("input, select")?.focus(); }, []);

  const submit = async (event: Event) => {
    event.preventDefault();
    setFailure("");
    const result = collectArguments(fields, texts, values);
    if (!result.ok) {
      setErrors(result.errors);
      const path = Object.keys(result.errors)[0];
      (document.getElementById(idOf(path, "coflux-lab-arg-")) ?? form.current?.querySelector<HTMLElement>('[aria-invalid="true"]'))?.focus();
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      const reply = await api.submit(workflow.module, workflow.name, [], result.kwargs);
      onSubmitted(reply.run);
    } catch (e) {
      setFailure(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };

  const set = (name: string, value: string) => setTexts((t) => ({ ...t, [name]: value }));
  const setValue = (field: Field, value: unknown) => {
    setValues((v) => ({ ...v, [field.name]: value }));
    if (Object.keys(errors).some((path) => fieldOfPath(path) === field.name)) {
      setErrors((e) => ({
        ...Object.fromEntries(Object.entries(e).filter(([path]) => fieldOfPath(path) !== field.name)),
        ...(value === undefined && field.hasDefault ? {} : validate(field.schema!, value, field.name)),
      }));
    }
  };
  return (
    <form ref={form} class="coflux-lab-runform" onSubmit={submit} noValidate aria-label={`Run ${workflow.name}`}
      onKeyDown={(e) => { if (e.key === "Escape") { e.stopPropagation(); onCancel(); } }}>
      {fields.length === 0 && <p class="coflux-lab-empty">No arguments.</p>}
      {fields.map((f) => {
        if (f.schema) {
          const fallback = f.hasDefault && f.defaultValue === undefined; // a default that is not JSON
          return (
            <div key={f.name} class="coflux-lab-schemafield" data-param={f.name}>
              <label for={idOf(f.name, "coflux-lab-arg-")}>{f.name}<em>: {f.annotation || "any"}</em></label>
              <SchemaForm schema={f.schema} value={values[f.name]} onChange={(v) => setValue(f, v)} label={f.name}
                errors={errors} disabled={busy} idPrefix="coflux-lab-arg-" />
              <small class="cf-muted">{describe(f.schema)}{fallback ? `; empty: default ${f.defaultLabel}` : ""}</small>
            </div>
          );
        }
        const error = errors[f.name];
        const common = {
          name: f.name, class: "cf-input", "aria-invalid": error ? "true" as const : undefined,
          "aria-label": f.name,
        };
        return (
          <label key={f.name}>
            <span>{f.name}<em>: {f.annotation || "any"}</em></span>
            {f.kind === "bool" ? (
              <select {...common} value={texts[f.name]} onChange={(e) => set(f.name, (e.target as HTMLSelectElement).value)}>
                {(f.hasDefault || f.optional) && <option value="">{f.hasDefault ? `default (${f.defaultLabel})` : "None"}</option>}
                <option value="true">true</option>
                <option value="false">false</option>
              </select>
            ) : (
              <input {...common} type="text" spellcheck={false} value={texts[f.name]}
                placeholder={f.hasDefault ? `default: ${f.defaultLabel}` : HINT[f.kind]}
                onInput={(e) => set(f.name, (e.target as HTMLInputElement).value)} />
            )}
            {error && <small class="coflux-lab-error" role="alert">{f.name}: {error}</small>}
          </label>
        );
      })}
      {failure && <p class="coflux-lab-error" role="alert">The server refused the run: {failure}</p>}
      <div class="coflux-lab-runform-actions">
        <button type="submit" class="cf-button cf-primary" disabled={busy}>{busy ? "Starting…" : "Start run"}</button>
        <button type="button" class="cf-button" onClick={onCancel}>Cancel</button>
      </div>
    </form>
  );
}
