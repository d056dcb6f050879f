// Every attempt as a bar on one time axis: waiting (created -> started) lighter, running
// (started -> finished, or now) in its status colour. Rows are virtualised like the logs.
import type { JSX } from "preact";
import { useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import type { ExecutionInfo } from "../api/types";
import type { StepModel } from "../store/types";
import { useModelVersion, useNow, useView } from "./context";
import { formatDuration, formatTime } from "./format";
import { executionStatus, isActive, statusLook } from "./status";
import { useVirtualRows } from "./virtual";

const ROW_H = 24;
const LABEL_W = 220;
const OVERSCAN = 10;
const TICK_W = 110; // room for one tick label ("18:51:33", "+12.5 s") and a gap: fewer ticks when narrow

interface Row { step: StepModel; execution: ExecutionInfo }

const statusOf = executionStatus;

export function TimelineView(): JSX.Element {
  const { model, selectStep, selectedStep } = useView();
  const version = useModelVersion(model);
  const rows = useMemo<Row[]>(() => {
    const out: Row[] = [];
    for (const step of model.steps()) for (const execution of step.executions) out.push({ step, execution });
    return out;
  }, [model, version]);
  const live = rows.some((r) => isActive(statusOf(r.execution)));
  const now = useNow(live, 500);
  const { ref: scroller, first, last, total } = useVirtualRows(rows.length, ROW_H, OVERSCAN);

  let start = Infinity;
  let end = -Infinity;
  for (const { execution: e } of rows) {
    start = Math.min(start, e.created_at);
    end = Math.max(end, e.result?.at ?? (isActive(statusOf(e)) ? now : e.started_at ?? e.created_at));
  }
  if (!isFinite(start)) { start = now; end = now + 1; }
  const span = Math.max(end - start, 0.001);
  const pct = (t: number) => `${(((t - start) / span) * 100).toFixed(3)}%`;
  const width = (a: number, b: number) => `${Math.max(((b - a) / span) * 100, 0.15).toFixed(3)}%`;

  // As many ticks as their labels have room for (the step panel narrows the axis).
  const axisRef = useRef<HTMLDivElement>(null);
  const [axisWidth, setAxisWidth] = useState(0);
  useLayoutEffect(() => {
    const el = axisRef.current;
    if (!el) return undefined;
    const update = () => setAxisWidth(el.clientWidth);
    update();
    const observer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(update);
    observer?.observe(el);
    return () => observer?.disconnect();
  }, []);
  const ticks = Math.max(1, Math.min(6, Math.floor((axisWidth || 6 * TICK_W) / TICK_W)));

  return <div class="cf-timeline" data-rows={rows.length}>
    <div class="cf-timeline-axis" style={{ paddingLeft: `${LABEL_W}px` }} aria-hidden="true">
      <div class="cf-timeline-ticks" ref={axisRef} data-ticks={ticks + 1}>
        {Array.from({ length: ticks + 1 }, (_, i) => <span key={i} class="cf-tick" style={{ left: `${(i / ticks) * 100}%` }}>
          {i === 0 ? formatTime(start) : `+${formatDuration((span * i) / ticks)}`}</span>)}
      </div>
    </div>
    <div class="cf-timeline-scroll" ref={scroller}>
      <div style={{ height: `${total}px`, position: "relative" }} role="list" aria-label="attempts on a time axis">
        {rows.slice(first, last).map(({ step, execution: e }, i) => {
          const status = statusOf(e);
          const look = statusLook(status);
          const started = e.started_at;
          const finished = e.result?.at ?? (isActive(status) ? now : started ?? e.created_at);
          const waitEnd = started ?? (e.result?.at ?? (isActive(status) ? now : e.created_at));
          const title = `${step.target} #${step.number} attempt ${e.attempt}: ${look.label}` +
            (started != null ? `, waited ${formatDuration(started - e.created_at)}, ran ${formatDuration(finished - started)}` :
              `, waiting ${formatDuration(waitEnd - e.created_at)}`);
          return <div key={e.id} role="listitem" class={`cf-timeline-row${step.id === selectedStep ? " cf-selected" : ""}`}
            style={{ top: `${(first + i) * ROW_H}px`, height: `${ROW_H}px` }} data-execution={e.id}>
            <button type="button" class="cf-timeline-label" style={{ width: `${LABEL_W}px` }} title={title}
              onClick={() => selectStep(step.id)}>
              <span class={`cf-status-icon cf-tone-${look.tone}`} aria-hidden="true">{look.icon}</span>
              {" "}{step.target} <span class="cf-muted">#{step.number}{step.executions.length > 1 ? `.${e.attempt}` : ""}</span>
              <span class="cf-sr">{look.label}</span>
            </button>
            <div class="cf-timeline-track" onClick={() => selectStep(step.id)} title={title}>
              <div class="cf-bar cf-bar-wait" style={{ left: pct(e.created_at), width: width(e.created_at, waitEnd) }} />
              {started != null ? <div class={`cf-bar cf-bar-run cf-tone-${look.tone}${status === "running" ? " cf-bar-live" : ""}`}
                style={{ left: pct(started), width: width(started, finished) }} /> : null}
            </div>
          </div>;
        })}
      </div>
    </div>
    <div class="cf-timeline-legend cf-muted">
      <span class="cf-bar-key cf-bar-wait" /> waiting <span class="cf-bar-key cf-bar-run cf-tone-run" /> running
      {" "}(bar colour by outcome; hover a bar for times)
    </div>
  </div>;
}
