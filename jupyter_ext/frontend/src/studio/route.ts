// Studio's hash routes: `#/` workflows, `#/workflows/<module>/<name>`, `#/runs`, `#/runs/<id>`,
// `#/runs/<id>/steps/<step id>`, `#/workers`, `#/queue`, `#/inputs`, `#/pools`.
export type Route =
  | { page: "workflows" }
  | { page: "workflow"; module: string; name: string }
  | { page: "runs" }
  | { page: "run"; runId: string; stepId: string | null }
  | { page: "workers" }
  | { page: "queue" }
  | { page: "inputs" }
  | { page: "pools" }
  | { page: "missing"; hash: string };

const part = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#\/?/, "").replace(/\/+$/, "");
  const parts = path === "" ? [] : path.split("/").map(part);
  if (parts.length === 0) return { page: "workflows" };
  switch (parts[0]) {
    case "workflows":
      if (parts.length === 1) return { page: "workflows" };
      // A module may contain dots but not slashes; the name is the last segment.
      if (parts.length >= 3) return { page: "workflow", module: parts.slice(1, -1).join("/"), name: parts[parts.length - 1] };
      break;
    case "runs":
      if (parts.length === 1) return { page: "runs" };
      if (parts.length === 2) return { page: "run", runId: parts[1], stepId: null };
      if (parts.length === 4 && parts[2] === "steps") return { page: "run", runId: parts[1], stepId: parts[3] };
      break;
    case "workers":
      return { page: "workers" };
    case "queue":
      return { page: "queue" };
    case "inputs":
      return { page: "inputs" };
    case "pools":
      return { page: "pools" };
  }
  return { page: "missing", hash };
}

const enc = encodeURIComponent;
export const href = {
  workflows: () => "#/",
  workflow: (module: string, name: string) => `#/workflows/${enc(module)}/${enc(name)}`,
  runs: () => "#/runs",
  run: (runId: string) => `#/runs/${enc(runId)}`,
  // ":" stays readable in step ids (R1:2)
  step: (runId: string, stepId: string) => `#/runs/${enc(runId)}/steps/${enc(stepId).replace(/%3A/g, ":")}`,
  workers: () => "#/workers",
  queue: () => "#/queue",
  inputs: () => "#/inputs",
  pools: () => "#/pools",
};

export function navigate(hash: string, replace = false): void {
  if (location.hash === hash) return;
  if (replace) history.replaceState(null, "", hash);
  else location.hash = hash;
  if (replace) window.dispatchEvent(new HashChangeEvent("hashchange"));
}
