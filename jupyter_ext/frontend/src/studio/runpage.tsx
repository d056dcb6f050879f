// One run: the shared run view (graph, timeline, logs, metrics, assets, step panel, and the
// run-level cancel in its header), with the selected step in the URL (`#/runs/<id>/steps/<step>`).
import { useEffect, useReducer, useRef, useState } from "preact/hooks";
import type { JSX } from "preact";
import type { CofluxClient } from "../api/client";
import type { RunModel } from "../store/types";
import { mountRunView } from "../views/runview";
import { href, navigate } from "./route";

function useRunModel(api: CofluxClient, runId: string): RunModel {
  const [model] = useState(() => api.openRun(runId));
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    const off = model.onChange(() => bump(0));
    return () => { off(); model.dispose(); };
  }, [model]);
  return model;
}

export function RunPage({ api, runId, stepId }: { api: CofluxClient; runId: string; stepId: string | null }): JSX.Element {
  const model = useRunModel(api, runId);
  const host = useRef<HTMLDivElement>(null);
  // The step the view itself selected last: a route change to another step (a link, Back) remounts.
  const fromView = useRef<string | null | undefined>(undefined);
  const [mounts, setMounts] = useState(0);

  useEffect(() => {
    if (fromView.current !== undefined && fromView.current === stepId) return;
    if (mounts > 0 || fromView.current !== undefined) setMounts((n) => n + 1);
  }, [stepId]);

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    fromView.current = stepId;
    const unmount = mountRunView(el, api, runId, {
      selectedStep: stepId ?? undefined,
      onSelectStep: (step) => {
        fromView.current = step;
        navigate(step ? href.step(runId, step) : href.run(runId), true);
      },
      onOpenRun: (other) => navigate(href.run(other)),
    });
    return unmount;
  }, [api, runId, mounts]);

  const snapshot = model.snapshot;
  return (
    <section class="cf-page cf-run-page">
      <div class="cf-run-bar">
        <p class="cf-crumbs">
          <a href={href.runs()}>Runs</a> ›{" "}
          {snapshot && <><a href={href.workflow(snapshot.module, snapshot.target)}>{snapshot.module}/{snapshot.target}</a> › </>}
          <code>{runId}</code>
          {snapshot?.parent && <> · child of <a href={href.step(snapshot.parent.split(":")[0], snapshot.parent.split(":").slice(0, 2).join(":"))}><code>{snapshot.parent}</code></a></>}
        </p>
        {model.error && <span class="cf-error" role="alert">{model.error}</span>}
      </div>
      <div class="cf-run-host" ref={host} key={mounts} />
    </section>
  );
}
