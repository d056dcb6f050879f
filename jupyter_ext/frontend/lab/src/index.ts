// Coflux Studio in JupyterLab: a left-sidebar panel (workflows, run dialog, live recent runs) and
// runs in main-area tabs, rendering the shared views directly (no iframe), so Lab's theme and
// Jupyter's auth (cookie + XSRF through the shared client) apply as they do to Lab itself.
import { ILayoutRestorer, type JupyterFrontEnd, type JupyterFrontEndPlugin } from "@jupyterlab/application";
import { ICommandPalette, InputDialog, MainAreaWidget, WidgetTracker } from "@jupyterlab/apputils";
import { PageConfig, URLExt } from "@jupyterlab/coreutils";
import { IRenderMimeRegistry } from "@jupyterlab/rendermime";
import { Widget } from "@lumino/widgets";
import { createApi, type CofluxClient } from "../../src/api/client";
import { cofluxIcon } from "./icon";
import { isOpenRunDetail, OPEN_RUN_EVENT } from "./openrun";
import { mountPanel } from "./panel";
import { runRendererFactory } from "./runmime";
import { RunTab } from "./runtab";

import "../../src/views/theme.css";
import "../style/lab.css";

const PANEL_ID = "coflux-studio";
const CMD_OPEN_PANEL = "coflux:open-studio";
const CMD_OPEN_RUN = "coflux:open-run";

/** The side panel: mounted the first time it is shown, so Lab opens no feed until it is used. */
class StudioPanel extends Widget {
  private unmount: (() => void) | null = null;

  constructor(private readonly mount: (el: HTMLElement) => () => void) {
    super();
    this.id = PANEL_ID;
    this.addClass("coflux-lab-panel");
    this.addClass("cf-root");
    this.title.icon = cofluxIcon;
    this.title.caption = "Coflux";
  }

  protected onAfterShow(): void {
    this.unmount ??= this.mount(this.node);
  }

  protected onAfterAttach(): void {
    if (this.isVisible) this.onAfterShow();
  }

  dispose(): void {
    this.unmount?.();
    super.dispose();
  }
}

function activate(app: JupyterFrontEnd, palette: ICommandPalette | null, restorer: ILayoutRestorer | null,
  rendermime: IRenderMimeRegistry | null): void {
  const base = URLExt.join(PageConfig.getBaseUrl(), "coflux/");
  const api: CofluxClient = createApi({ base });

  // Run outputs of notebooks (coflux/run_output.py): a stored path means this Jupyter's own mount
  // (whatever base_url it has now), so they share this page's client and its one live feed.
  const others = new Map<string, CofluxClient>();
  const clientFor = (stored: string): CofluxClient => {
    if (!/^https?:/i.test(stored)) return api;
    let client = others.get(stored);
    if (!client) others.set(stored, client = createApi({ base: stored }));
    return client;
  };
  rendermime?.addFactory(runRendererFactory(clientFor));
  const tracker = new WidgetTracker<MainAreaWidget<RunTab>>({ namespace: "coflux-run" });

  const openRun = (runId: string, stepId?: string): MainAreaWidget<RunTab> => {
    const existing = tracker.find((w) => w.content.runId === runId);
    if (existing) {
      if (stepId) existing.content.selectStep(stepId);
      app.shell.activateById(existing.id);
      return existing;
    }
    const content = new RunTab({
      api, runId, stepId, openRun: (id) => { openRun(id); },
      studioUrl: `${api.base}#/runs/${encodeURIComponent(runId)}`,
    });
    const widget = new MainAreaWidget({ content });
    widget.id = `coflux-run-${runId}`;
    widget.title.label = `Run ${runId}`;
    widget.title.caption = `Coflux run ${runId}`;
    widget.title.icon = cofluxIcon;
    widget.title.closable = true;
    widget.addClass("coflux-lab-runtab-widget");
    app.shell.add(widget, "main");
    void tracker.add(widget);
    app.shell.activateById(widget.id);
    return widget;
  };

  const panel: StudioPanel = new StudioPanel((el) => mountPanel(el, {
    api, openRun: (id) => { openRun(id); }, studioUrl: api.base,
    // The count badge on the panel's icon (lab.css draws the tab's data-coflux-inputs).
    onPendingInputs: (count) => {
      // Lab keeps the tab's own entries (data-id) in the same dataset: change only ours.
      const { "coflux-inputs": _old, ...rest } = panel.title.dataset;
      panel.title.dataset = count > 0 ? { ...rest, "coflux-inputs": String(count) } : rest;
      panel.title.caption = count > 0 ? `Coflux: ${count} input${count === 1 ? "" : "s"} waiting` : "Coflux";
    },
  }));
  app.shell.add(panel, "left", { rank: 900 });

  app.commands.addCommand(CMD_OPEN_PANEL, {
    label: "Coflux: Open Studio panel",
    caption: "Show the Coflux panel (workflows, run dialog, recent runs) in the left sidebar",
    icon: cofluxIcon,
    execute: () => app.shell.activateById(PANEL_ID),
  });
  app.commands.addCommand(CMD_OPEN_RUN, {
    label: (args) => (typeof args.runId === "string" && args.runId ? `Coflux: Open run ${args.runId}` : "Coflux: Open run…"),
    caption: "Open a Coflux run in a main-area tab",
    icon: cofluxIcon,
    execute: async (args) => {
      let runId = typeof args.runId === "string" ? args.runId : "";
      if (!runId) {
        const answer = await InputDialog.getText({ title: "Open a Coflux run", label: "Run id", placeholder: "e.g. RqBT5DY" });
        runId = answer.button.accept ? (answer.value ?? "").trim() : "";
      }
      if (!runId) return undefined;
      return openRun(runId, typeof args.stepId === "string" && args.stepId ? args.stepId : undefined);
    },
  });
  palette?.addItem({ command: CMD_OPEN_PANEL, category: "Coflux" });
  palette?.addItem({ command: CMD_OPEN_RUN, category: "Coflux" });

  // "Open in Studio" from a view elsewhere in the page (the notebook run view): a Lab tab.
  document.addEventListener(OPEN_RUN_EVENT, (event) => {
    const detail = (event as CustomEvent<unknown>).detail;
    if (!isOpenRunDetail(detail)) return;
    // Inside this run's own tab, "open in Studio" means the full Studio page: let the view go there.
    const own = tracker.find((w) => w.content.runId === detail.runId);
    if (own && event.target instanceof Node && own.node.contains(event.target)) return;
    event.preventDefault();
    void app.commands.execute(CMD_OPEN_RUN, { runId: detail.runId, ...(detail.stepId ? { stepId: detail.stepId } : {}) });
  });

  if (restorer) {
    restorer.add(panel, PANEL_ID);
    void restorer.restore(tracker, {
      command: CMD_OPEN_RUN,
      args: (w) => ({ runId: w.content.runId }),
      name: (w) => w.content.runId,
    });
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: "coflux-studio:plugin",
  description: "Coflux Studio: a side panel of workflows and runs, and runs in main-area tabs.",
  autoStart: true,
  optional: [ICommandPalette, ILayoutRestorer, IRenderMimeRegistry],
  activate,
};

export default plugin;
