// The run's log lines, live: a virtualised list (fixed row height) with templates filled in,
// filters by step, level and text, and each line's step a link to the step panel.
import type { JSX } from "preact";
import { useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import type { LogLine, WireValue } from "../api/types";
import type { RunModel } from "../store/types";
import { useModelVersion, useView } from "./context";
import { stepChoices } from "./fanout";
import { formatTime, stepOfExecution } from "./format";
import { InlineValue, plainText } from "./values";
import { useVirtualRows } from "./virtual";

const ROW_H = 22;
const LEVELS = ["debug", "info", "warning", "error"];
const LEVEL_ICON: Record<string, string> = { debug: "·", info: "ℹ", warning: "⚠", error: "✗", stdout: "›", stderr: "»" };

type Part = { text: string } | { name: string };

const templateCache = new Map<string, Part[]>();

/** "{name}" placeholders (a format spec or conversion after the name is ignored), "{{" and "}}" escapes. */
export function parseTemplate(template: string): Part[] {
  const cached = templateCache.get(template);
  if (cached) return cached;
  const parts: Part[] = [];
  const re = /\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)(?:[!:][^{}]*)?\}/g;
  let last = 0;
  let text = "";
  for (let m = re.exec(template); m; m = re.exec(template)) {
    text += template.slice(last, m.index);
    if (m[0] === "{{") text += "{";
    else if (m[0] === "}}") text += "}";
    else {
      if (text) parts.push({ text });
      text = "";
      parts.push({ name: m[1] });
    }
    last = m.index + m[0].length;
  }
  text += template.slice(last);
  if (text) parts.push({ text });
  if (templateCache.size > 5000) templateCache.clear();
  templateCache.set(template, parts);
  return parts;
}

/** The line as plain text (for the text filter and copy). */
export function lineText(line: LogLine): string {
  const fields = line.fields ?? {};
  const used = new Set<string>();
  let out = "";
  for (const part of parseTemplate(line.template ?? "")) {
    if ("text" in part) out += part.text;
    else if (part.name in fields) { used.add(part.name); out += plainText(fields[part.name].v) ?? "…"; }
    else out += `{${part.name}}`;
  }
  for (const [name, value] of Object.entries(fields)) {
    if (!used.has(name)) out += ` ${name}=${plainText(value.v) ?? "…"}`;
  }
  return out;
}

function Message({ line }: { line: LogLine }): JSX.Element {
  const fields: Record<string, WireValue> = line.fields ?? {};
  const used = new Set<string>();
  const parts = parseTemplate(line.template ?? "").map((part, i) => {
    if ("text" in part) return <span key={i}>{part.text}</span>;
    const value = fields[part.name];
    if (!value) return <span key={i}>{`{${part.name}}`}</span>;
    used.add(part.name);
    return <InlineValue key={i} value={value} />;
  });
  const rest = Object.entries(fields).filter(([name]) => !used.has(name));
  return <span class="cf-log-message">{parts}
    {rest.map(([name, value]) => <span class="cf-log-field" key={name}> <span class="cf-log-field-name">{name}</span>=<InlineValue value={value} /></span>)}
  </span>;
}

function levelPasses(line: string, filter: string): boolean {
  if (!filter) return true;
  if (filter === "stdout" || filter === "stderr") return line === filter;
  const want = LEVELS.indexOf(filter);
  const have = LEVELS.indexOf(line);
  return have >= want && have >= 0;
}

function stepLabel(model: RunModel, executionId: string): string {
  const step = model.step(stepOfExecution(executionId));
  if (!step) return executionId;
  const attempt = executionId.slice(executionId.lastIndexOf(":") + 1);
  return `${step.target} #${step.number}${step.executions.length > 1 ? `.${attempt}` : ""}`;
}

export function LogsView(): JSX.Element {
  const { model, selectStep, selectedStep } = useView();
  const version = useModelVersion(model);
  const [stepFilter, setStepFilter] = useState("");
  const [level, setLevel] = useState("");
  const [text, setText] = useState("");
  const [follow, setFollow] = useState(true);
  const all = model.logs();
  const choices = useMemo(() => {
    const ids = new Set<string>();
    for (const line of all) ids.add(stepOfExecution(line.execution_id));
    return stepChoices([...ids].map((id) => model.step(id)).filter((s) => s !== undefined));
  }, [all.length, version]);
  const lines = useMemo(() => {
    const needle = text.trim().toLowerCase();
    if (!stepFilter && !level && !needle) return all;
    // A fan-out's choice stands for all its steps.
    const chosen = choices.find((c) => c.id === stepFilter);
    const steps = new Set(chosen ? chosen.members.map((s) => s.id) : [stepFilter]);
    return all.filter((line) => (!stepFilter || steps.has(stepOfExecution(line.execution_id))) &&
      levelPasses(line.level, level) && (!needle || lineText(line).toLowerCase().includes(needle)));
  }, [all, all.length, version, stepFilter, level, text, choices]);
  const { ref, first, last, total } = useVirtualRows(lines.length, ROW_H, 15);
  const atBottom = useRef(true);

  useLayoutEffect(() => {
    const el = ref.current;
    if (el && follow && atBottom.current) el.scrollTop = el.scrollHeight;
  }, [lines.length, follow]);
  const onScroll = (event: Event) => {
    const el = event.currentTarget as HTMLDivElement;
    atBottom.current = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW_H * 1.5;
  };

  return <div class="cf-logs" data-lines={lines.length}>
    <div class="cf-logs-filters" role="search">
      <label>Step <select class="cf-input" aria-label="filter by step" value={stepFilter} onChange={(e) => setStepFilter((e.target as HTMLSelectElement).value)}>
        <option value="">all steps</option>
        {selectedStep && !choices.some((c) => c.id === selectedStep) ? <option value={selectedStep}>{stepLabel(model, `${selectedStep}:1`)} (selected)</option> : null}
        {stepFilter && stepFilter !== selectedStep && !choices.some((c) => c.id === stepFilter) ?
          <option value={stepFilter}>{stepLabel(model, `${stepFilter}:1`)}</option> : null}
        {choices.map((c) => <option key={c.id} value={c.id}>{c.label}</option>)}
      </select></label>
      <label>Level <select class="cf-input" value={level} onChange={(e) => setLevel((e.target as HTMLSelectElement).value)}>
        <option value="">all</option>
        {LEVELS.map((l) => <option key={l} value={l}>{l} and above</option>)}
        <option value="stdout">stdout</option>
        <option value="stderr">stderr</option>
      </select></label>
      <input class="cf-input cf-logs-search" type="search" placeholder="filter text" aria-label="filter text" value={text}
        onInput={(e) => setText((e.target as HTMLInputElement).value)} />
      <label class="cf-check"><input type="checkbox" checked={follow} onChange={(e) => { atBottom.current = true; setFollow((e.target as HTMLInputElement).checked); }} /> follow</label>
      <span class="cf-muted">{lines.length === all.length ? `${all.length} lines` : `${lines.length} of ${all.length} lines`}</span>
    </div>
    <div class="cf-logs-scroll" ref={ref} onScroll={onScroll} tabIndex={0} aria-label="log lines">
      {lines.length === 0 ? <div class="cf-empty">{all.length ? "no line matches the filters" : "no log lines yet"}</div> : null}
      <div class="cf-logs-body" style={{ height: `${total}px` }} role="list">
        {/* One offset block of rows in flow; rows keyed by their slot in the window, so a scroll
            patches the same few dozen elements instead of replacing them. */}
        <div class="cf-logs-window" style={{ transform: `translateY(${first * ROW_H}px)` }}>
        {lines.slice(first, last).map((line, i) => <div key={i} role="listitem"
          class={`cf-log-row cf-level-${line.level}`} style={{ height: `${ROW_H}px` }}
          data-line={line.id} data-index={first + i}>
          <span class="cf-log-time">{formatTime(line.at)}</span>
          <span class={`cf-log-level cf-level-${line.level}`}><span aria-hidden="true">{LEVEL_ICON[line.level] ?? "·"}</span> {line.level}</span>
          <a href="#" class="cf-link cf-log-step" onClick={(e) => { e.preventDefault(); selectStep(stepOfExecution(line.execution_id)); }}
            title={line.execution_id}>{stepLabel(model, line.execution_id)}</a>
          <Message line={line} />
        </div>)}
        </div>
      </div>
    </div>
  </div>;
}
