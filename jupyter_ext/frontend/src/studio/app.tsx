// Studio's shell: navigation, the workspace, the connection state, the theme; pages by route.
import { useEffect, useState } from "preact/hooks";
import type { JSX } from "preact";
import type { CofluxClient } from "../api/client";
import type { Workspace } from "../api/types";
import { useConnected, useLoad, useRoute, useTopic } from "./hooks";
import { href } from "./route";
import { WorkflowsPage, WorkflowPage } from "./workflows";
import { RunsPage } from "./runs";
import { RunPage } from "./runpage";
import { WorkersPage } from "./workers";
import { QueuePage } from "./queue";
import { InputsPage, usePendingInputs } from "./inputs";
import { PoolsPage } from "./pools";

type Theme = "auto" | "light" | "dark";
const THEME_KEY = "coflux.studio.theme";
const WORKSPACE_KEY = "coflux.studio.workspace";

function stored(key: string, fallback: string): string {
  try {
    return localStorage.getItem(key) ?? fallback;
  } catch {
    return fallback;
  }
}

function store(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    // private mode: the choice lasts for this page only
  }
}

function applyTheme(theme: Theme): void {
  const html = document.documentElement;
  html.classList.toggle("cf-theme-dark", theme === "dark");
  html.classList.toggle("cf-theme-light", theme === "light");
}

export function App({ api, mode }: { api: CofluxClient; mode: "headless" | "jupyter" }): JSX.Element {
  const route = useRoute();
  const connected = useConnected(api);
  const [everConnected, setEverConnected] = useState(false);
  useEffect(() => { if (connected) setEverConnected(true); }, [connected]);
  // The feed stays open on every page (not only where a page follows a topic), so the state shown
  // here is the server's reachability.
  useTopic(api, "workers", () => undefined);
  const [theme, setTheme] = useState<Theme>(() => stored(THEME_KEY, "auto") as Theme);
  const [workspace, setWorkspace] = useState(() => stored(WORKSPACE_KEY, "default"));
  const workspaces = useLoad(() => api.get<{ workspaces: Workspace[] }>("api/workspaces"), [api]);

  useEffect(() => applyTheme(theme), [theme]);
  useEffect(() => {
    const names = workspaces.data?.workspaces.map((w) => w.name) ?? [];
    if (names.length && !names.includes(workspace)) setWorkspace(names.includes("default") ? "default" : names[0]);
  }, [workspaces.data]);

  const chooseWorkspace = (name: string) => {
    setWorkspace(name);
    store(WORKSPACE_KEY, name);
  };
  const cycleTheme = () => {
    const next: Theme = theme === "auto" ? "dark" : theme === "dark" ? "light" : "auto";
    setTheme(next);
    store(THEME_KEY, next);
  };

  const pendingInputs = usePendingInputs(api).inputs.length;
  const section = route.page === "workflow" ? "workflows" : route.page === "run" ? "runs" : route.page;
  const nav: [string, string, string][] = [
    ["workflows", "Workflows", href.workflows()],
    ["runs", "Runs", href.runs()],
    ["workers", "Workers", href.workers()],
    ["queue", "Queue", href.queue()],
    ["inputs", "Inputs", href.inputs()],
    ["pools", "Pools", href.pools()],
  ];
  let page: JSX.Element;
  switch (route.page) {
    case "workflows": page = <WorkflowsPage api={api} workspace={workspace} />; break;
    case "workflow": page = <WorkflowPage api={api} workspace={workspace} module={route.module} name={route.name} />; break;
    case "runs": page = <RunsPage api={api} workspace={workspace} />; break;
    case "run": page = <RunPage api={api} runId={route.runId} stepId={route.stepId} key={route.runId} />; break;
    case "workers": page = <WorkersPage api={api} />; break;
    case "queue": page = <QueuePage api={api} />; break;
    case "inputs": page = <InputsPage api={api} />; break;
    case "pools": page = <PoolsPage api={api} workspace={workspace} />; break;
    default: page = <section class="cf-page"><h1>Not found</h1><p>Studio has no page <code>{route.hash}</code>. <a href={href.workflows()}>Workflows</a></p></section>;
  }

  return (
    <div class="cf-root cf-studio">
      <header class="cf-studio-bar">
        <a class="cf-studio-brand" href={href.workflows()}>Coflux Studio</a>
        <nav class="cf-studio-nav" aria-label="Studio">
          {nav.map(([id, label, link]) => (
            <a href={link} class={section === id ? "cf-active" : ""} aria-current={section === id ? "page" : undefined}>{label}
              {id === "inputs" && pendingInputs > 0 ? <> <span class="cf-count-badge" aria-label={`${pendingInputs} pending`}>{pendingInputs}</span></> : null}</a>
          ))}
        </nav>
        <span class="cf-studio-spacer" />
        <label class="cf-studio-workspace">
          <span>Workspace</span>
          <select value={workspace} onChange={(e) => chooseWorkspace((e.target as HTMLSelectElement).value)}>
            {(workspaces.data?.workspaces ?? [{ name: workspace, base: null }]).map((w) => (
              <option value={w.name}>{w.name}{w.base ? ` (from ${w.base})` : ""}</option>
            ))}
          </select>
        </label>
        <span class={`cf-studio-conn ${connected ? "cf-conn-up" : "cf-conn-down"}`} role="status" title={mode === "jupyter" ? "Studio inside Jupyter" : "headless server"}>
          {connected ? "● live" : everConnected ? "○ disconnected, reconnecting…" : "○ connecting…"}
        </span>
        <button type="button" class="cf-button cf-studio-theme" onClick={cycleTheme} title="Switch theme (auto, dark, light)">
          {theme === "dark" ? "☾ dark" : theme === "light" ? "☀ light" : "◐ auto"}
        </button>
      </header>
      <main class="cf-studio-main">{page}</main>
    </div>
  );
}
