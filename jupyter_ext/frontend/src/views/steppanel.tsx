// The step panel: arguments, the chosen attempt's result or error (with the remote traceback),
// every attempt (outcome, cause, timing, worker, who re-ran or cancelled it), cache and memo links, children, the options and
// requires the step ran with (a run's overrides included);
// actions: cancel the step's latest execution, re-run it in a chosen workspace, resume it from
// failure (its calls an earlier attempt completed are reused).
// Keyboard: Tab moves through it, Escape closes it, arrow keys move between attempts.
import type { JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { ErrorInfo, ExecutionInfo, ResultInfo, Workspace } from "../api/types";
import type { StepModel } from "../store/types";
import { useModelVersion, useRunNow, useView } from "./context";
import { PromptCard } from "./prompts";
import { effectiveRequires, formatDateTime, formatDuration, optionsText, requiresText, runOfId, shortType,
  stepOfExecution } from "./format";
import { reusedAttempt } from "./graphmodel";
import { executionStatus, isActive, statusLook } from "./status";
import { ExecutionLink, WireValueView } from "./values";


export function StatusBadge({ status }: { status: string }): JSX.Element {
  const look = statusLook(status);
  return <span class={`cf-badge cf-tone-${look.tone}${status === "running" ? " cf-badge-live" : ""}`} data-status={status}>
    <span class="cf-status-icon" aria-hidden="true">{look.icon}</span> <span class="cf-status-text">{look.label}</span>
  </span>;
}

export function ErrorView({ error }: { error: ErrorInfo }): JSX.Element {
  const frames = error.frames ?? [];
  return <div class="cf-error" role="group" aria-label="error">
    <div class="cf-error-head"><strong class="cf-error-type">{shortType(error.type)}</strong>: <span class="cf-error-message">{error.message}</span></div>
    {error.retryable != null ? <div class="cf-muted">{error.retryable ? "retryable" : "not retryable"}</div> : null}
    {frames.length ? <ol class="cf-traceback" aria-label="remote traceback">
      {frames.map(([file, line, fn, source, label], i) => <li key={i} class="cf-frame">
        {/* A notebook cell is named as Jupyter names it ("Cell In[8], line 3"), not by its temporary file. */}
        <div>{label ? <span class="cf-frame-file" title={`${file}:${line}`}>{label}</span> :
          <><span class="cf-frame-file">{file}</span>:<span class="cf-frame-line">{line}</span></>} in <span class="cf-frame-fn">{fn}</span></div>
        {source ? <pre class="cf-frame-source">{source}</pre> : null}
      </li>)}
    </ol> : null}
  </div>;
}

function ResultView({ result, reused }: { result: ResultInfo; reused?: number }): JSX.Element {
  return <div class="cf-result">
    <StatusBadge status={result.kind} />
    {result.kind === "value" ? <WireValueView value={result.value} /> : null}
    {result.error ? <ErrorView error={result.error} /> : null}
    {result.successor ? <div class="cf-successor">{reused ? `reused from attempt ${reused}:` : successorText(result.kind)} <ExecutionLink id={result.successor} /></div> : null}
  </div>;
}

function successorText(kind: string): string {
  switch (kind) {
    case "cached": return "answered from the cache by";
    case "deferred": return "deferred to";
    case "spawned": return "spawned as";
    case "recurred": return "recurred as";
    case "suspended": return "resumes as";
    default: return "continued by";
  }
}

/** Where a successor chain inside this run ends (the outcome a cached/deferred result stands for). */
function finalResult(find: (id: string) => ExecutionInfo | undefined, start: ExecutionInfo): ExecutionInfo | undefined {
  let current: ExecutionInfo | undefined = start;
  for (let i = 0; i < 1000 && current?.result?.successor; i++) {
    const next = find(current.result.successor);
    if (!next) return undefined;
    current = next;
  }
  return current === start ? undefined : current;
}

/** Statuses a resume can follow: the step's latest attempt ended without a value. */
export const RESUMABLE = new Set(["error", "abandoned", "crashed", "timeout", "cancelled"]);

interface CurrentCode { code_hash: string; worker: string; kind: string }
interface CodeHistory {
  code_hash: string | null;
  changed_since: { step: string; execution: string } | null;
  current: CurrentCode | null; // the code a connected worker (for a cell's task, its kernel) has now
  matches: boolean | null;
}

/** Whether the code a step ran is the code its target has now: for a kernel, the cell as it is
 * now; for a headless worker, its module. Nothing when no connected worker says. */
function CurrentCodeText({ history }: { history: CodeHistory | null }): JSX.Element | null {
  const current = history?.current;
  if (!current || history?.matches == null) return null;
  const cell = current.kind === "kernel";
  const now = <code title={current.code_hash}>{current.code_hash.slice(0, 12)}</code>;
  const text = history.matches ? <> · same code as {cell ? "the cell" : `worker ${current.worker}`} now</>
    : cell ? <> · the cell has changed since (now {now})</> : <> · worker {current.worker} now has other code ({now})</>;
  return <span class="cf-code-current" data-matches={String(history.matches)}>{text}</span>;
}

/** What the step panel says of the code an attempt ran: its hash; whether that is the code as it
 * is now; for a cache versioned by code, a hit's "same code as R:n", or for one that ran, the
 * earlier call whose code differed. */
function CodeText({ step, execution }: { step: StepModel; execution: ExecutionInfo }): JSX.Element | null {
  const { api } = useView();
  const cache = step.options?.cache as { version?: string } | null | undefined;
  const byCode = cache?.version === "@code";
  const ran = execution.result != null && execution.result.kind !== "cached";
  // A cell's task shipped by value to a worker that accepts code (coflux/shipping.py).
  const shipped = step.options?.code as { hash?: string } | null | undefined;
  const [history, setHistory] = useState<CodeHistory | null>(null);
  useEffect(() => {
    setHistory(null);
    let live = true;
    api.get<CodeHistory>(`api/steps/${step.id}/code`).then((h) => { if (live) setHistory(h); }, () => undefined);
    return () => { live = false; };
  }, [api, step.id, execution.id]);
  const hash = execution.code_hash ?? history?.code_hash ?? shipped?.hash ?? null;
  const short = hash ? <code title={hash}>{hash.slice(0, 12)}</code> : null;
  const current = <CurrentCodeText history={history} />;
  if (byCode && execution.result?.kind === "cached" && execution.result.successor) {
    return <span class="cf-code-note">cache hit (same code as <ExecutionLink id={execution.result.successor}
      label={stepOfExecution(execution.result.successor)} />) {short}{current}</span>;
  }
  if (ran && history?.changed_since) {
    return <span class="cf-code-note">{short} code changed since <ExecutionLink id={history.changed_since.execution}
      label={history.changed_since.step} />{current}</span>;
  }
  if (shipped) {
    return <span class="cf-code-shipped">{short} shipped by value (a notebook cell's code){current}</span>;
  }
  return short ? <span>{short}{current}</span> : null;
}

function Field({ label, children }: { label: string; children: JSX.Element | JSX.Element[] | string | null }): JSX.Element | null {
  if (children == null || children === "" || (Array.isArray(children) && children.length === 0)) return null;
  return <div class="cf-field"><dt>{label}</dt><dd>{children}</dd></div>;
}

function Attempts({ step, chosen, choose }: { step: StepModel; chosen: number; choose: (i: number) => void }): JSX.Element {
  const { model } = useView();
  const reused = (e: ExecutionInfo) => reusedAttempt(model, step, e);
  const refs = useRef<(HTMLLIElement | null)[]>([]);
  const live = step.executions.some((e) => isActive(executionStatus(e)));
  const now = useRunNow(model, live);
  const onKey = (event: KeyboardEvent, i: number) => {
    let next: number;
    if (event.key === "ArrowDown" || event.key === "ArrowRight") next = Math.min(step.executions.length - 1, i + 1);
    else if (event.key === "ArrowUp" || event.key === "ArrowLeft") next = Math.max(0, i - 1);
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = step.executions.length - 1;
    else return;
    event.preventDefault();
    choose(next);
    refs.current[next]?.focus();
  };
  return <ul class="cf-attempts" role="listbox" aria-label="attempts">
    {step.executions.map((e, i) => {
      const status = executionStatus(e);
      const end = e.result?.at ?? (isActive(status) ? now : null);
      return <li key={e.id} ref={(el) => { refs.current[i] = el; }} role="option" aria-selected={i === chosen}
        tabIndex={i === chosen ? 0 : -1} class={`cf-attempt${i === chosen ? " cf-selected" : ""}`}
        data-execution={e.id} onClick={() => choose(i)} onKeyDown={(ev) => onKey(ev, i)}>
        <div class="cf-attempt-head">
          <strong>attempt {e.attempt}</strong> <StatusBadge status={status} />
          {e.cause ? <span class="cf-tag">{e.cause}</span> : null}
          {reused(e) ? <span class="cf-tag cf-reused">reused from attempt {reused(e)}</span> : null}
          <span class="cf-muted"> {e.id}</span>
        </div>
        <div class="cf-attempt-times cf-muted">
          created {formatDateTime(e.created_at)}
          {e.execute_after ? ` · not before ${formatDateTime(e.execute_after)}` : ""}
          {e.started_at != null ? ` · started after ${formatDuration(e.started_at - e.created_at)}` : ""}
          {e.started_at != null && end != null ? ` · ran ${formatDuration(end - e.started_at)}` : ""}
          {e.result ? ` · finished ${formatDateTime(e.result.at)}` : ""}
          {e.worker ? ` · worker ${e.worker}` : ""}
          {e.by ? ` · re-run by ${e.by}` : ""}
          {e.result?.by ? ` · cancelled by ${e.result.by}` : ""}
        </div>
        {e.waiting && !e.result ? <div class="cf-waiting"><HourglassIcon /> {e.waiting}</div> : null}
      </li>;
    })}
  </ul>;
}

/** An hourglass drawn, not a character: the emoji has no glyph in many fonts (a box). */
export function HourglassIcon(): JSX.Element {
  return <svg class="cf-icon" width="10" height="12" viewBox="0 0 10 12" aria-hidden="true">
    <path d="M1 0.5h8M1 11.5h8M2 0.5c0 3 2.5 3.8 3 5.5c-0.5 1.7-3 2.5-3 5.5M8 0.5c0 3-2.5 3.8-3 5.5c0.5 1.7 3 2.5 3 5.5"
      fill="none" stroke="currentColor" stroke-width="1.2" stroke-linecap="round" />
  </svg>;
}

function Actions({ step }: { step: StepModel }): JSX.Element {
  const { api, model } = useView();
  const [workspaces, setWorkspaces] = useState<Workspace[] | null>(null);
  const [workspace, setWorkspace] = useState("");
  const [message, setMessage] = useState("");
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    let live = true;
    api.get<{ workspaces: Workspace[] } | Workspace[]>("api/workspaces").then((r) => {
      if (!live) return;
      const list = Array.isArray(r) ? r : r.workspaces;
      setWorkspaces(list);
      setWorkspace((w) => w || model.snapshot?.workspace || list[0]?.name || "");
    }, () => { if (live) setWorkspaces([]); });
    return () => { live = false; };
  }, [api]);
  const active = isActive(step.status);
  const resumable = !active && RESUMABLE.has(step.status);
  const offline = !model.connected; // what the server would answer is unknown: no actions
  const act = async (what: string, work: () => Promise<unknown>) => {
    setBusy(true);
    setMessage(`${what}…`);
    try {
      const r = await work();
      const id = (r as { execution?: string } | null)?.execution;
      setMessage(id ? `${what}: new attempt ${id}` : `${what}: done`);
    } catch (e) {
      setMessage(`${what} failed: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      setBusy(false);
    }
  };
  return <div class="cf-actions">
    <button type="button" class="cf-button cf-danger" disabled={!active || busy || offline}
      title={offline ? "no contact with the server" : undefined}
      onClick={() => act("cancel", () => api.cancel(step.latest.id))}>⊘ Cancel step</button>
    <span class="cf-rerun">
      <button type="button" class="cf-button cf-primary" disabled={busy || active || offline}
        title={offline ? "no contact with the server" : undefined}
        onClick={() => act("re-run", () => api.rerun(step.id, workspace || undefined))}>↻ Re-run</button>
      {" in "}
      <select class="cf-input" aria-label="workspace to re-run in" value={workspace}
        onChange={(e) => setWorkspace((e.target as HTMLSelectElement).value)}>
        {(workspaces ?? []).map((w) => <option key={w.name} value={w.name}>{w.name}</option>)}
        {workspaces && !workspaces.length ? <option value="">default</option> : null}
      </select>
    </span>
    {resumable ? <button type="button" class="cf-button cf-resume" disabled={busy || offline}
      title="a new attempt in which every call an earlier attempt completed is reused; only failed or never-reached calls run again"
      onClick={() => act("resume from failure", () => api.resume(step.id))}>⏵ Resume from failure</button> : null}
    {message ? <div class="cf-action-message" role="status">{message}</div> : null}
  </div>;
}

export function StepPanel({ stepId, onClose }: { stepId: string; onClose: () => void }): JSX.Element {
  const { model, api } = useView();
  useModelVersion(model);
  const step = model.step(stepId);
  const [chosen, setChosen] = useState<number | null>(null);
  const root = useRef<HTMLElement>(null);
  const attempts = step?.executions.length ?? 0;
  const lastCount = useRef(attempts);
  useEffect(() => { setChosen(null); }, [stepId]);
  useEffect(() => {
    // A new attempt (a re-run, a retry) is shown as it appears, unless one was chosen by hand.
    if (attempts !== lastCount.current) { lastCount.current = attempts; setChosen(null); }
  }, [attempts]);
  useEffect(() => { root.current?.focus(); }, [stepId]);

  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key === "Escape") { event.stopPropagation(); onClose(); }
  };
  if (!step) {
    return <aside class="cf-step-panel" ref={root} tabIndex={-1} onKeyDown={onKeyDown} aria-label="step">
      <div class="cf-panel-head"><strong>{stepId}</strong>
        <button type="button" class="cf-button cf-close" aria-label="close the step panel" onClick={onClose}>×</button></div>
      <div class="cf-muted">not in this run (yet)</div>
    </aside>;
  }
  const index = chosen ?? step.executions.length - 1;
  const execution = step.executions[Math.max(0, Math.min(index, step.executions.length - 1))];
  const find = (id: string) => model.execution(id)?.execution;
  const final = execution ? finalResult(find, execution) : undefined;
  const children = model.steps().filter((s) => s.parent && stepOfExecution(s.parent) === step.id);
  const childRuns = model.childRuns().filter((r) => stepOfExecution(r.parent) === step.id);
  const runRequires = model.snapshot?.requires;
  const ranWith = effectiveRequires(runRequires, step.options?.requires);
  const options = step.options ?? {};
  const shownOptions = optionsText(options);
  const runText = [requiresText(runRequires) ? `requires ${requiresText(runRequires)}` : "",
    model.snapshot?.memo ? "memo" : ""].filter(Boolean).join(", ");

  return <aside class="cf-step-panel" ref={root} tabIndex={-1} onKeyDown={onKeyDown}
    aria-label={`step ${step.target} #${step.number}`} data-step={step.id}>
    <div class="cf-panel-head">
      <div>
        <div class="cf-panel-title"><strong>{step.target}</strong> <span class="cf-muted">#{step.number} · {step.type}</span></div>
        <div class="cf-muted cf-small">{step.module} · {step.id}</div>
      </div>
      <StatusBadge status={step.status} />
      <button type="button" class="cf-button cf-close" aria-label="close the step panel" onClick={onClose}>×</button>
    </div>
    {step.stale ? <div class="cf-note cf-tone-warn">⚠ stale: it used a result that a re-run has since replaced</div> : null}
    <Actions step={step} />

    {step.inputs?.length ? <section aria-label="inputs">
      <h4>Inputs ({step.inputs.length})</h4>
      {step.inputs.map((i) => <PromptCard key={`${i.id}:${i.state}`} api={api} inputId={i.id} />)}
    </section> : null}

    <section aria-label="arguments">
      <h4>Arguments</h4>
      {step.arguments.length ? <ol class={`cf-args${step.parameters?.length ? " cf-args-named" : ""}`}>
        {step.arguments.map((a, i) => <li key={i}>
          {step.parameters?.[i] ? <><code class="cf-arg-name">{step.parameters[i]}</code> = </> : null}
          <WireValueView value={a} />
        </li>)}
      </ol> : <div class="cf-muted">none</div>}
    </section>

    <section aria-label="outcome">
      <h4>{execution && execution !== step.latest ? `Attempt ${execution.attempt}` : "Result"}</h4>
      {execution?.result ? <ResultView result={execution.result} reused={reusedAttempt(model, step, execution)} /> :
        <div class="cf-muted"><StatusBadge status={execution ? executionStatus(execution) : step.status} /> no result yet</div>}
      {final?.result ? <div class="cf-final"><div class="cf-muted">which resolved to ({final.id}):</div><ResultView result={final.result} /></div> : null}
    </section>

    <section aria-label="attempts">
      <h4>Attempts ({step.executions.length})</h4>
      <Attempts step={step} chosen={index} choose={setChosen} />
    </section>

    <section aria-label="details">
      <h4>Details</h4>
      <dl class="cf-fields">
        <Field label="parent">{step.parent ? <ExecutionLink id={step.parent} /> : "none (the run's workflow)"}</Field>
        <Field label="code">{execution && (execution.code_hash || step.options?.cache || step.options?.code) ? <CodeText step={step} execution={execution} /> : null}</Field>
        <Field label="reused">{execution && reusedAttempt(model, step, execution) ? <span>reused from attempt {reusedAttempt(model, step, execution)} (<ExecutionLink id={execution.result!.successor!} />)</span> : null}</Field>
        <Field label="cache key">{step.cache_key ? <code>{step.cache_key}</code> : null}</Field>
        <Field label="cache hit">{step.executions.filter((e) => e.result?.kind === "cached" && e.result.successor && !reusedAttempt(model, step, e)).map((e) =>
          <span key={e.id}>from <ExecutionLink id={e.result!.successor!} />{runOfId(e.result!.successor!) !== model.runId ? " (another run)" : ""} </span>)}</Field>
        <Field label="memo key">{step.memo_key ? <code>{step.memo_key}</code> : null}</Field>
        <Field label="memoised for">{step.memoisedBy.length ? step.memoisedBy.map((id) => <span key={id}><ExecutionLink id={id} /> </span>) : null}</Field>
        <Field label="waited on">{step.dependencies.length ? step.dependencies.map((id) => <span key={id}><ExecutionLink id={id} /> </span>) : null}</Field>
        <Field label="group">{step.group ? `${step.group.name ?? "unnamed"} (${step.group.id})` : null}</Field>
        <Field label="children">{children.length || childRuns.length ? <>
          {children.slice(0, 100).map((c) => <span key={c.id}><ExecutionLink id={c.latest.id} label={`${c.target} #${c.number}`} /> </span>)}
          {children.length > 100 ? <span class="cf-muted">… {children.length - 100} more</span> : null}
          {childRuns.map((r) => <span key={r.id}><ExecutionLink id={`${r.id}:1:1`} label={`child run ${r.target} ${r.id}`} /> </span>)}
        </> : null}</Field>
        <Field label="options">{shownOptions ? <code title={JSON.stringify(options)}>{shownOptions}</code> : null}</Field>
        <Field label="ran with requires">{Object.keys(ranWith).length ? <code>{requiresText(ranWith)}</code> : null}</Field>
        <Field label="run">{runText ? <code>{runText}</code> : null}</Field>
        <Field label="submitted by">{model.snapshot?.by ?? null}</Field>
        <Field label="created">{formatDateTime(step.created_at)}</Field>
      </dl>
    </section>
  </aside>;
}
