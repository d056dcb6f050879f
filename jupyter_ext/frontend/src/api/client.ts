// The one client of the coflux server: HTTP requests with the page's auth, and the live feed.
import type { CofluxApi, RunModel } from "../store/types";
import { Feed, type ConnectionListener } from "./feed";
import { openRunModel } from "../store/runstore";

export interface ApiOptions {
  /** The server's root: "/" headless, "{base_url}coflux/" in Jupyter, or an absolute URL. */
  base: string;
  /** A token for a server on another origin (sent as `Authorization: token <t>`); else cookies. */
  token?: string;
}

/** What a failed request tells: the HTTP status and the server's error code and message. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** The concrete client: CofluxApi plus the feed's connection state (Studio's shell shows it). */
export interface CofluxClient extends CofluxApi {
  readonly token: string;
  readonly connected: boolean;
  onConnection(listener: ConnectionListener): () => void;
  /** The URL of a path under the server's root (absolute, for links and downloads). */
  url(path: string, query?: Record<string, string | number | undefined>): string;
  close(): void;
}

function cookie(name: string): string | undefined {
  if (typeof document === "undefined") return undefined;
  const match = document.cookie.match(new RegExp("(?:^|;\\s*)" + name + "=([^;]*)"));
  return match ? match[1] : undefined;
}

function resolveBase(base: string): string {
  const origin = typeof location !== "undefined" ? location.href : "http://localhost/";
  const url = new URL(base || "/", origin);
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  url.search = "";
  url.hash = "";
  return url.toString();
}

export function createApi(options: ApiOptions): CofluxClient {
  const token = options.token ?? "";
  const root = resolveBase(options.base);

  const url = (path: string, query?: Record<string, string | number | undefined>): string => {
    const target = new URL(path.replace(/^\//, ""), root);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== "") target.searchParams.set(key, String(value));
    }
    return target.toString();
  };

  const headers = (json: boolean): Record<string, string> => {
    const h: Record<string, string> = { "X-Requested-With": "coflux", Accept: "application/json" };
    if (json) h["Content-Type"] = "application/json";
    const xsrf = cookie("_xsrf");
    if (xsrf) h["X-XSRFToken"] = xsrf;
    if (token) h.Authorization = `token ${token}`;
    return h;
  };

  const request = async <T>(method: string, path: string, body?: unknown,
    query?: Record<string, string | number | undefined>): Promise<T> => {
    let response: Response;
    try {
      response = await fetch(url(path, query), {
        method,
        credentials: "same-origin",
        headers: headers(body !== undefined),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new ApiError(0, "network", `the server cannot be reached (${String(error)})`);
    }
    const text = await response.text();
    let payload: unknown;
    try {
      payload = text ? JSON.parse(text) : null;
    } catch {
      payload = null; // not JSON (a proxy's error page): the status says what happened
    }
    if (!response.ok) {
      const error = (payload as { error?: { code?: string; message?: string } } | null)?.error;
      throw new ApiError(response.status, error?.code ?? `http_${response.status}`,
        error?.message ?? (response.statusText || `HTTP ${response.status}`));
    }
    return payload as T;
  };

  const wsUrl = (): string => {
    const target = new URL(url("api/ws", token ? { token } : undefined));
    target.protocol = target.protocol === "https:" ? "wss:" : "ws:";
    return target.toString();
  };
  const feed = new Feed(wsUrl);

  const api: CofluxClient = {
    base: root,
    token,
    get connected() { return feed.connected; },
    onConnection: (listener) => feed.onConnection(listener),
    url,
    get: <T>(path: string, query?: Record<string, string | number | undefined>) =>
      request<T>("GET", path, undefined, query),
    post: <T>(path: string, body?: unknown) => request<T>("POST", path, body ?? {}),
    openRun: (runId: string): RunModel => openRunModel(api, feed, runId),
    subscribe: (topic, onEvent) => feed.subscribe(topic, {
      onEvent: (event) => onEvent(event),
      onSnapshot: () => onEvent({ type: "resync" }),
    }),
    blobUrl: (key: string) => url(`api/blobs/${encodeURIComponent(key)}`, token ? { token } : undefined),
    cancel: (executionId: string) => request("POST", `api/executions/${executionId}/cancel`, {}),
    rerun: (stepId: string, workspace?: string) =>
      request<{ execution: string }>("POST", `api/steps/${stepId}/rerun`, workspace ? { workspace } : {}),
    resume: (stepId: string) =>
      request<{ execution: string }>("POST", `api/steps/${stepId}/rerun`, { from_failure: true }),
    submit: (module, target, args, kwargs, workspace) =>
      request<{ run: string; [key: string]: unknown }>("POST", "api/runs",
        { module, target, args, kwargs: kwargs ?? {}, ...(workspace ? { workspace } : {}) }),
    close: () => feed.close(),
  };
  return api;
}
