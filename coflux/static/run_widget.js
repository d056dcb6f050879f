// Live run view for coflux.widgets.RunWidget. Plain DOM, no dependencies, no build step.
// Text goes in with textContent only: step errors are user data.

const FINAL_OK = new Set(["value", "cached", "spawned"]);
const RUNNING = new Set(["assigned", "running"]);
const TRAITS = ["steps", "status", "value", "error", "run_id", "connected", "warning", "note"];

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// Between assignment and the worker's `started` report a step reads as "running" (timing starts
// at the assignment; `started_at` replaces it once known).
function label(status) {
  return status === "assigned" ? "running" : status;
}

function badge(status) {
  const node = el("span", `coflux-badge coflux-${statusClass(status)}`, label(status));
  if (label(status) !== status) node.title = `${status} to a worker`;
  return node;
}

function duration(step, now) {
  const start = step.started_at || step.assigned_at;
  if (!start) return "";
  const end = step.finished_at || now;
  const s = Math.max(0, end - start);
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function statusClass(status) {
  if (FINAL_OK.has(status)) return "ok";
  if (status === "error" || status === "crashed" || status === "timeout" || status === "abandoned") return "bad";
  if (RUNNING.has(status)) return "busy";
  if (status === "pending") return "wait";
  return "other";
}

function render({ model, el: root }) {
  root.classList.add("coflux-run");
  const header = el("div", "coflux-run-header");
  const result = el("div", "coflux-run-value");
  const table = el("table", "coflux-run-steps");
  const note = el("div", "coflux-run-note");
  root.append(header, result, table, note);
  let ticker = null;

  function draw() {
    const steps = model.get("steps") || [];
    const status = model.get("status");
    const now = Date.now() / 1000;

    header.replaceChildren(
      badge(status),
      el("strong", null, ` ${model.get("module")}/${model.get("target")} `),
      el("span", "coflux-dim", model.get("run_id")),
    );
    const counts = {};
    for (const s of steps) counts[label(s.status)] = (counts[label(s.status)] || 0) + 1;
    header.append(el("span", "coflux-dim",
      `  ${steps.length} step${steps.length === 1 ? "" : "s"}: ` +
      Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", ")));

    // Indent children under their parent step.
    const byExecution = new Map(steps.map((s) => [s.execution, s]));
    const depth = (s, guard = 0) => {
      const parent = s.parent && byExecution.get(s.parent);
      return parent && guard < 50 ? 1 + depth(parent, guard + 1) : 0;
    };
    const rows = [];
    for (const s of steps) {
      const tr = el("tr", `coflux-row-${statusClass(s.status)}`);
      const name = el("td", "coflux-target");
      name.style.paddingLeft = `${0.4 + 1.2 * depth(s)}em`;
      name.append(el("span", null, `${s.module}/${s.target}`));
      if (s.kind === "workflow") name.append(el("span", "coflux-dim", " (workflow)"));
      const state = el("td");
      state.append(badge(s.status));
      tr.append(
        name,
        el("td", "coflux-dim", s.execution),
        state,
        el("td", "coflux-dim", duration(s, now)),
        el("td", "coflux-error", s.error || (s.successor ? `→ ${s.successor}` : "")),
      );
      rows.push(tr);
    }
    table.replaceChildren(...rows);
    const value = model.get("value");
    result.replaceChildren();
    if (status === "value" && value) {
      result.append(el("span", "coflux-dim", "result "), el("code", null, value));
    }
    result.hidden = !result.firstChild;
    const err = model.get("error");
    const offline = model.get("connected") === false;
    const warning = model.get("warning");
    note.textContent = [err || (offline ? "disconnected from the coflux server: reconnecting…" : "") ||
      (warning ? `warning: ${warning}` : ""), model.get("note")].filter(Boolean).join("\n");
    root.classList.toggle("coflux-offline", offline);

    // Re-draw once a second while something runs, so running durations tick.
    const busy = steps.some((s) => RUNNING.has(s.status));
    if (busy && !ticker) ticker = setInterval(draw, 1000);
    if (!busy && ticker) { clearInterval(ticker); ticker = null; }
  }

  for (const name of TRAITS) model.on(`change:${name}`, draw);
  draw();
  return () => {
    if (ticker) clearInterval(ticker);
    for (const name of TRAITS) model.off(`change:${name}`, draw);
  };
}

export default { render };
