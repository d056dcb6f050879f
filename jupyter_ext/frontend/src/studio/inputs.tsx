// The Inputs page: prompts raised by running code (cf.Prompt) that wait for an answer, oldest
// first (GET api/inputs), kept current by the `input` events of the runs topic. Opening one goes
// to its step, whose panel holds the form.
import type { JSX } from "preact";
import type { CofluxClient } from "../api/client";
import type { InputDetail } from "../api/types";
import { InputsList } from "../views/prompts";
import { useLoad, useThrottled, useTicker, useTopic } from "./hooks";
import { href, navigate } from "./route";

/** The pending inputs, reloaded when an `input` event says one was raised or answered. */
export function usePendingInputs(api: CofluxClient): { inputs: InputDetail[]; error: string | null } {
  const loaded = useLoad(() => api.get<{ inputs: InputDetail[] }>("api/inputs"), [api]);
  const reload = useThrottled(loaded.reload, 300);
  useTopic(api, "runs", (event) => { if (event.type === "input") reload(); });
  return { inputs: loaded.data?.inputs ?? [], error: loaded.error };
}

export function InputsPage({ api }: { api: CofluxClient }): JSX.Element {
  const { inputs, error } = usePendingInputs(api);
  const now = useTicker(inputs.length > 0);
  return <section class="cf-page cf-inputs-page">
    <h1>Inputs <span class="cf-muted">{inputs.length} pending</span></h1>
    {error && <p class="cf-error" role="alert">The inputs could not be loaded: {error}</p>}
    <InputsList inputs={inputs} now={now} onOpen={(i) => navigate(href.step(i.run, i.step))} />
  </section>;
}
