import { Widget } from "@lumino/widgets";
import type { CofluxApi } from "../../src/store/types";
import { mountRunView } from "../../src/views/runview";

export interface RunTabOptions {
  api: CofluxApi;
  runId: string;
  stepId?: string;
  studioUrl: string;
  openRun: (runId: string) => void;
}

/** A main-area tab's content: the shared run view, mounted once it is in the page and unmounted
 * (closing its live feed subscription) when the tab is closed. */
export class RunTab extends Widget {
  readonly runId: string;
  private selected: string | null;
  private unmount: (() => void) | null = null;

  constructor(private readonly options: RunTabOptions) {
    super();
    this.runId = options.runId;
    this.selected = options.stepId ?? null;
    this.addClass("coflux-lab-runtab");
    this.addClass("cf-root");
  }

  /** Open a step in the step panel (a second "open run" for the same run with a step id). */
  selectStep(stepId: string): void {
    this.selected = stepId;
    if (this.unmount) this.remount();
  }

  protected onAfterAttach(): void {
    if (!this.unmount) this.remount();
  }

  private remount(): void {
    this.unmount?.();
    const { api, runId, studioUrl, openRun } = this.options;
    this.unmount = mountRunView(this.node, api, runId, {
      studioUrl,
      onOpenRun: openRun,
      selectedStep: this.selected ?? undefined,
      onSelectStep: (stepId) => { this.selected = stepId; },
    });
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.unmount?.();
    this.unmount = null;
    super.dispose();
  }
}
