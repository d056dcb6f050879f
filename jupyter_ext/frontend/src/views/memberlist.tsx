// The steps of an opened fan-out or group (or every step a search or status filter matches) as a
// virtualised, sortable table: item, arguments, status, duration, attempts. A click selects the
// step (the step panel opens); the selected row is scrolled into view (next/previous failure).
import type { JSX } from "preact";
import { useLayoutEffect, useMemo, useState } from "preact/hooks";
import type { StepModel } from "../store/types";
import { useNow } from "./context";
import { argumentsText, countStatuses, countsText, sortMembers, stepDuration, type SortKey } from "./fanout";
import { formatDuration } from "./format";
import { isActive, statusLook } from "./status";
import { useVirtualRows } from "./virtual";

const ROW_H = 24;
const COLUMNS: { key: SortKey; label: string }[] = [
  { key: "item", label: "item" }, { key: "arguments", label: "arguments" }, { key: "status", label: "status" },
  { key: "duration", label: "duration" }, { key: "attempts", label: "attempts" },
];

export interface MemberListProps {
  title: string;
  steps: readonly StepModel[];
  selectedStep: string | null;
  onSelect: (stepId: string) => void;
  onClose: () => void;
  /** offered for a collapsed fan-out: draw its members as nodes */
  onShowGraph?: () => void;
}

export function MemberList({ title, steps, selectedStep, onSelect, onClose, onShowGraph }: MemberListProps): JSX.Element {
  const [sort, setSort] = useState<{ key: SortKey; descending: boolean }>({ key: "item", descending: false });
  const live = steps.some((s) => isActive(s.status));
  const now = useNow(live);
  const rows = useMemo(() => sortMembers(steps, sort.key, sort.descending, now),
    // Re-sorted when the steps or the order change; a live duration sort follows the clock too.
    [steps, sort, sort.key === "duration" && live ? now : 0]);
  const { ref, first, last, total } = useVirtualRows(rows.length, ROW_H, 8);
  const counts = useMemo(() => countStatuses(steps), [steps]);

  useLayoutEffect(() => {
    const el = ref.current;
    const at = selectedStep ? rows.findIndex((s) => s.id === selectedStep) : -1;
    if (!el || at < 0) return;
    const top = at * ROW_H;
    if (top < el.scrollTop || top + ROW_H > el.scrollTop + el.clientHeight) {
      el.scrollTop = Math.max(0, top - el.clientHeight / 2);
    }
  }, [selectedStep, rows]);

  const header = (key: SortKey, label: string) => {
    const on = sort.key === key;
    return <button type="button" class={`cf-member-sort${on ? " cf-active" : ""}`} data-sort={key}
      aria-sort={on ? (sort.descending ? "descending" : "ascending") : "none"}
      title={`sort by ${label}`}
      onClick={() => setSort({ key, descending: on ? !sort.descending : false })}>
      {label}{on ? (sort.descending ? " ▾" : " ▴") : ""}</button>;
  };

  return <aside class="cf-member-list" role="region" aria-label={`steps of ${title}`} data-rows={rows.length}
    onKeyDown={(e) => { if (e.key === "Escape") onClose(); }}>
    <div class="cf-member-head">
      <strong class="cf-member-title">{title}</strong>
      <span class="cf-spacer" />
      {onShowGraph ? <button type="button" class="cf-button" onClick={onShowGraph}
        title="draw every member as a node in the graph">show as graph</button> : null}
      <button type="button" class="cf-button cf-close" aria-label="close the list" onClick={onClose}>×</button>
      <span class="cf-muted cf-member-counts">{steps.length} step{steps.length === 1 ? "" : "s"}: {countsText(counts)}</span>
    </div>
    <div class="cf-member-row cf-member-header" role="row">{COLUMNS.map((c) => header(c.key, c.label))}</div>
    <div class="cf-member-scroll" ref={ref}>
      <div style={{ height: `${total}px`, position: "relative" }} role="listbox" aria-label="members">
        {rows.slice(first, last).map((step, i) => {
          const look = statusLook(step.status);
          const selected = step.id === selectedStep;
          return <div key={step.id} role="option" aria-selected={selected} tabIndex={0} data-step={step.id}
            data-status={step.status}
            class={`cf-member-row cf-group-member cf-tone-${look.tone}${selected ? " cf-selected" : ""}`}
            style={{ top: `${(first + i) * ROW_H}px`, height: `${ROW_H}px` }}
            onClick={() => onSelect(step.id)}
            onKeyDown={(e) => { if (e.key === "Enter") onSelect(step.id); }}>
            <span class="cf-member-item">{step.target} #{step.number}</span>
            <span class="cf-member-args" title={argumentsText(step)}>{argumentsText(step)}</span>
            <span class="cf-member-status"><span class="cf-status-icon" aria-hidden="true">{look.icon}</span> <span class="cf-status-text">{look.label}</span></span>
            <span class="cf-member-duration">{formatDuration(stepDuration(step, now))}</span>
            <span class="cf-member-attempts">{step.executions.length}</span>
          </div>;
        })}
      </div>
    </div>
  </aside>;
}
