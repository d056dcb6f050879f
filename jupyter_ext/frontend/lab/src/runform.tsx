// The panel's run dialog, inline under the workflow (the sidebar is narrow: no modal). The typed
// argument entry is Studio's (studio/args.ts: fields from the signature, parsed and checked
// before submit), so both faces accept and refuse exactly the same input.
import { useEffect, useRef, useState } from "preact/hooks";
import type { CofluxClient } from "../../src/api/client";
import type { WorkflowInfo } from "../../src/api/types";
import { collect, fieldsOf, initialText, type Field } from "../../src/studio/args";

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
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [failure, setFailure] = useState("");
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);

  useEffect(() => { form.current?.querySelector<HTMLElement>("input, select")?.focus(); }, []);

  const submit = async (event: Event) => {
    event.preventDefault();
    setFailure("");
    const result = collect(fields, texts);
    if (!result.ok) {
      setErrors(result.errors);
      form.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
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
  return (
    <form ref={form} class="coflux-lab-runform" onSubmit={submit} noValidate aria-label={`Run ${workflow.name}`}
      onKeyDown={(e) => { if (e.key === "Escape") { e.stopPropagation(); onCancel(); } }}>
      {fields.length === 0 && <p class="coflux-lab-empty">No arguments.</p>}
      {fields.map((f) => {
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
