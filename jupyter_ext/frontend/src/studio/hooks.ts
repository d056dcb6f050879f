// Small hooks Studio's pages share: the current route, a loaded resource, live topics.
import { useEffect, useRef, useState } from "preact/hooks";
import type { CofluxClient } from "../api/client";
import { parseRoute, type Route } from "./route";

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.hash));
    window.addEventListener("hashchange", update);
    return () => window.removeEventListener("hashchange", update);
  }, []);
  return route;
}

export interface Loaded<T> {
  data: T | null;
  error: string;
  loading: boolean;
  reload(): void;
}

/** `load()` now and whenever `deps` change or `reload()` is called; the latest answer wins. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: string; loading: boolean }>(
    { data: null, error: "", loading: true });
  const [tick, setTick] = useState(0);
  const serial = useRef(0);
  useEffect(() => {
    const mine = ++serial.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => { if (serial.current === mine) setState({ data, error: "", loading: false }); },
      (error: unknown) => {
        if (serial.current === mine) {
          setState((s) => ({ data: s.data, error: error instanceof Error ? error.message : String(error), loading: false }));
        }
      },
    );
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/** Call `onEvent` for every event of a live topic ("runs", "workers") while mounted. */
export function useTopic(api: CofluxClient, topic: "runs" | "workers", onEvent: (event: Record<string, unknown>) => void): void {
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useEffect(() => api.subscribe(topic, (event) => handler.current(event as Record<string, unknown>)), [api, topic]);
}

/** A callback that runs at most once per `ms` (trailing), for reloads triggered by live events. */
export function useThrottled(fn: () => void, ms: number): () => void {
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => () => { if (timer.current) clearTimeout(timer.current); }, []);
  return () => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      latest.current();
    }, ms);
  };
}

/** The feed's connection state. */
export function useConnected(api: CofluxClient): boolean {
  const [connected, setConnected] = useState(api.connected);
  useEffect(() => {
    setConnected(api.connected);
    return api.onConnection(setConnected);
  }, [api]);
  return connected;
}

/** Re-render every `ms` while `active` (durations of running things). */
export function useTicker(active: boolean, ms = 1000): number {
  const [now, setNow] = useState(() => Date.now() / 1000);
  useEffect(() => {
    if (!active) return;
    const id = setInterval(() => setNow(Date.now() / 1000), ms);
    return () => clearInterval(id);
  }, [active, ms]);
  return now;
}
