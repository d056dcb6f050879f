// The Workflows page (grouped by module, with docstrings) and one workflow's page.
import { useState } from "preact/hooks";
import type { JSX } from "preact";
import type { CofluxClient } from "../api/client";
import type { WorkflowInfo } from "../api/types";
import { useLoad, useThrottled, useTopic } from "./hooks";
import { href } from "./route";
import { RunDialog } from "./rundialog";
import { RunsList } from "./runs";
import { fieldsOf } from "./args";
import { unhostedText } from "../views/format";

type Workflows = { workflows: WorkflowInfo[] };

function signature(workflow: WorkflowInfo): string {
  const params = fieldsOf(workflow.parameters ?? []).map((f) =>
    `${f.name}${f.annotation ? `: ${f.annotation}` : ""}${f.hasDefault ? ` = ${f.defaultLabel}` : ""}`);
  return `${workflow.name}(${params.join(", ")})`;
}

/** The first paragraph of a docstring (the summary), for lists. */
function summary(doc: string | null): string {
  return (doc ?? "").split(/\n\s*\n/, 1)[0].replace(/\s+/g, " ").trim();
}

function useWorkflows(api: CofluxClient, workspace: string) {
  const loaded = useLoad(() => api.get<Workflows>("api/workflows", { workspace }), [api, workspace]);
  // A worker that connects may register new or changed workflows.
  const reload = useThrottled(loaded.reload, 1000);
  useTopic(api, "workers", reload);
  return loaded;
}

export function WorkflowsPage({ api, workspace }: { api: CofluxClient; workspace: string }): JSX.Element {
  const loaded = useWorkflows(api, workspace);
  const [dialog, setDialog] = useState<WorkflowInfo | null>(null);
  const workflows = loaded.data?.workflows ?? [];
  const modules = new Map<string, WorkflowInfo[]>();
  for (const w of workflows) modules.set(w.module, [...(modules.get(w.module) ?? []), w]);
  return (
    <section class="cf-page cf-workflows">
      <h1>Workflows <span class="cf-muted">in {workspace}</span></h1>
      {loaded.error && <p class="cf-error" role="alert">Workflows could not be loaded: {loaded.error}</p>}
      {!loaded.loading && !loaded.error && workflows.length === 0 && (
        <p class="cf-empty">No workflows are registered in <b>{workspace}</b> yet. Start a worker with your
          module, e.g. <code>coflux worker mymodule</code>; its workflows appear here.</p>
      )}
      {[...modules.entries()].map(([module, list]) => (
        <section class="cf-module" aria-label={`module ${module}`}>
          <h2 class="cf-module-name">{module}</h2>
          <ul class="cf-workflow-list">
            {list.map((w) => (
              <li class="cf-workflow" data-workflow={`${w.module}/${w.name}`}>
                <div class="cf-workflow-head">
                  <a class="cf-workflow-name" href={href.workflow(w.module, w.name)}>{w.name}</a>
                  <code class="cf-signature">{signature(w)}</code>
                  <button type="button" class="cf-button cf-primary" onClick={() => setDialog(w)}>Run…</button>
                </div>
                {unhostedText(w) ? <p class="cf-unhosted cf-tone-warn" role="note">⚠ {unhostedText(w)}: a run waits until one connects</p> : null}
                {w.instruction
                  ? <p class="cf-doc">{summary(w.instruction)}</p>
                  : <p class="cf-doc cf-muted">No docstring.</p>}
              </li>
            ))}
          </ul>
        </section>
      ))}
      {dialog && <RunDialog api={api} workflow={dialog} workspace={workspace} onClose={() => setDialog(null)} />}
    </section>
  );
}

export function WorkflowPage({ api, workspace, module, name }:
  { api: CofluxClient; workspace: string; module: string; name: string }): JSX.Element {
  const loaded = useWorkflows(api, workspace);
  const [open, setOpen] = useState(false);
  const workflow = loaded.data?.workflows.find((w) => w.module === module && w.name === name) ?? null;
  const fields = workflow ? fieldsOf(workflow.parameters ?? []) : [];
  return (
    <section class="cf-page cf-workflow-page">
      <p class="cf-crumbs"><a href={href.workflows()}>Workflows</a> › {module}</p>
      <h1>{name} <span class="cf-muted">{module}</span></h1>
      {loaded.error && <p class="cf-error" role="alert">{loaded.error}</p>}
      {!loaded.loading && !workflow && !loaded.error && (
        <p class="cf-empty">No workflow {module}/{name} is registered in {workspace}.</p>
      )}
      {workflow && (
        <>
          <div class="cf-workflow-actions">
            <code class="cf-signature">{signature(workflow)}</code>
            <button type="button" class="cf-button cf-primary" onClick={() => setOpen(true)}>Run…</button>
          </div>
          {unhostedText(workflow) ? <p class="cf-unhosted cf-tone-warn" role="note">⚠ {unhostedText(workflow)}: a run waits until one connects</p> : null}
          {workflow.instruction ? <pre class="cf-docstring">{workflow.instruction}</pre> : <p class="cf-muted">No docstring.</p>}
          {fields.length > 0 && (
            <table class="cf-table cf-params">
              <thead><tr><th>Parameter</th><th>Type</th><th>Default</th></tr></thead>
              <tbody>
                {fields.map((f) => (
                  <tr><td><code>{f.name}</code></td><td>{f.annotation || <span class="cf-muted">any (JSON)</span>}</td>
                    <td>{f.hasDefault ? <code>{f.defaultLabel}</code> : <span class="cf-muted">required</span>}</td></tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
      <h2>Runs</h2>
      <RunsList api={api} workspace={workspace} workflow={`${module}/${name}`} />
      {open && workflow && <RunDialog api={api} workflow={workflow} workspace={workspace} onClose={() => setOpen(false)} />}
    </section>
  );
}
