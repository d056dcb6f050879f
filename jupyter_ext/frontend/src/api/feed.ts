// The live feed: one WebSocket (`api/ws`) shared by every subscription of a client.
//
// Protocol (server/handlers.py SocketHandler, server/state.py): requests `{id, op, params}`,
// replies `{re: id, ok | err}`, pushes `{op: "events", events: [{topic, data}]}` where `data` is
// the event (with `seq`). A frame is one message or a list of them.
// `subscribe {topic}` replies with the topic's snapshot (a run's snapshot, or `{seq}` for "runs"
// and "workers"); after a reconnect, `subscribe {topic, after: seq}` replies `{events}`: what was
// missed. Live events that arrive before that reply are held back, then applied after it, and
// any event with a seq at or below the last one applied is dropped: no gap, no repeat.
import { Push } from "./protocol";
import type { FeedEvent } from "./types";

export type ConnectionListener = (connected: boolean) => void;

export interface TopicHandler {
  /** The subscribe reply without `after`: a run's snapshot, or `{snapshot: null, seq}`. */
  onSnapshot(snapshot: unknown): void;
  onEvent(event: FeedEvent): void;
  /** The subscribe reply (snapshot or missed events) was applied: the topic is live again. */
  onSynced?(): void;
  onError?(error: { code: string; message: string }): void;
}

interface Topic {
  name: string;
  handlers: Set<TopicHandler>;
  lastSeq: number | null; // null: no snapshot yet (subscribe fresh)
  synced: boolean; // false until this connection's subscribe reply was applied
  held: FeedEvent[]; // live events that came before the subscribe reply
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: { code: string; message: string }): void;
}

// Capped low: a view out of contact shows the truth again within ~3 s of the server's return.
const BACKOFF_MS = [250, 500, 1000, 2000];
const IDLE_CLOSE_MS = 5000; // keep an unused socket this long (a page switch resubscribes)

export class Feed {
  private ws: WebSocket | null = null;
  private open = false;
  private topics = new Map<string, Topic>();
  private pending = new Map<number, Pending>();
  private nextId = 1;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  private listeners = new Set<ConnectionListener>();
  private closed = false;

  constructor(private readonly url: () => string) {}

  get connected(): boolean {
    return this.open;
  }

  onConnection(listener: ConnectionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Follow a topic; the handler gets its snapshot, then every event once, in order. */
  subscribe(name: string, handler: TopicHandler): () => void {
    let topic = this.topics.get(name);
    const fresh = topic === undefined;
    if (!topic) {
      topic = { name, handlers: new Set(), lastSeq: null, synced: false, held: [] };
      this.topics.set(name, topic);
    }
    topic.handlers.add(handler);
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    if (fresh) {
      if (this.open) this.sendSubscribe(topic);
      else this.connect();
    } else if (topic.synced) {
      // A second viewer of a topic already followed: give it a snapshot of its own.
      this.resnapshot(topic, handler);
    }
    return () => this.unsubscribe(name, handler);
  }

  /** A request over the socket (only while connected). */
  request<T>(op: string, params: Record<string, unknown>): Promise<T> {
    if (!this.ws || !this.open) {
      return Promise.reject({ code: "disconnected", message: "the live connection is down" });
    }
    const id = this.nextId++;
    const ws = this.ws;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      ws.send(JSON.stringify({ id, op, params }));
    });
  }

  close(): void {
    this.closed = true;
    this.topics.clear();
    this.teardown();
  }

  // ------------------------------------------------------------------ internals

  private unsubscribe(name: string, handler: TopicHandler): void {
    const topic = this.topics.get(name);
    if (!topic) return;
    topic.handlers.delete(handler);
    if (topic.handlers.size > 0) return;
    this.topics.delete(name);
    if (this.open) this.request("unsubscribe", { topic: name }).catch(() => undefined);
    if (this.topics.size === 0 && !this.idleTimer) {
      this.idleTimer = setTimeout(() => {
        this.idleTimer = null;
        if (this.topics.size === 0) this.teardown();
      }, IDLE_CLOSE_MS);
    }
  }

  private resnapshot(topic: Topic, handler: TopicHandler): void {
    const run = topic.name.startsWith("run:") ? topic.name.slice(4) : null;
    if (run === null) {
      handler.onSnapshot({ snapshot: null, seq: topic.lastSeq });
      handler.onSynced?.();
      return;
    }
    this.request("get_run", { run }).then(
      (snapshot) => {
        if (!topic.handlers.has(handler)) return;
        handler.onSnapshot(snapshot);
        handler.onSynced?.();
      },
      (error) => handler.onError?.(error),
    );
  }

  private connect(): void {
    if (this.ws || this.closed) return;
    if (this.reconnectTimer) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
    }
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.open = true;
      this.attempt = 0;
      this.emit(true);
      for (const topic of this.topics.values()) this.sendSubscribe(topic);
    };
    ws.onmessage = (message) => {
      if (this.ws === ws) this.receive(message.data);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.dropConnection();
      if (this.topics.size > 0) this.scheduleReconnect();
    };
    ws.onerror = () => undefined; // onclose follows and reconnects
  }

  private dropConnection(): void {
    const wasOpen = this.open;
    this.ws = null;
    this.open = false;
    for (const topic of this.topics.values()) {
      topic.synced = false;
      topic.held = [];
    }
    for (const pending of this.pending.values()) {
      pending.reject({ code: "disconnected", message: "the live connection was lost" });
    }
    this.pending.clear();
    if (wasOpen) this.emit(false);
  }

  private teardown(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const ws = this.ws;
    this.dropConnection();
    if (ws) {
      ws.onclose = null;
      ws.close();
    }
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer || this.closed) return;
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    const delay = base / 2 + Math.random() * base; // jitter: many tabs do not come back at once
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }

  private emit(connected: boolean): void {
    for (const listener of [...this.listeners]) listener(connected);
  }

  private sendSubscribe(topic: Topic): void {
    topic.synced = false;
    topic.held = [];
    const resuming = topic.lastSeq !== null;
    const params: Record<string, unknown> = { topic: topic.name };
    if (resuming) params.after = topic.lastSeq;
    this.request<Record<string, unknown>>("subscribe", params).then(
      (reply) => {
        if (this.topics.get(topic.name) !== topic) return;
        if (resuming) {
          const events = Array.isArray(reply?.events) ? (reply.events as FeedEvent[]) : [];
          for (const event of events) this.deliver(topic, event);
        } else {
          const seq = typeof reply?.seq === "number" ? reply.seq : 0;
          topic.lastSeq = seq;
          for (const handler of [...topic.handlers]) handler.onSnapshot(reply);
        }
        const held = topic.held;
        topic.held = [];
        topic.synced = true;
        for (const event of held) this.deliver(topic, event);
        for (const handler of [...topic.handlers]) handler.onSynced?.();
      },
      (error: { code: string; message: string }) => {
        if (error?.code === "disconnected") return; // resubscribed on reconnect
        for (const handler of [...topic.handlers]) handler.onError?.(error);
      },
    );
  }

  private deliver(topic: Topic, event: FeedEvent): void {
    if (typeof event?.seq !== "number") return;
    if (topic.lastSeq !== null && event.seq <= topic.lastSeq) return; // seen already
    topic.lastSeq = event.seq;
    for (const handler of [...topic.handlers]) {
      try {
        handler.onEvent(event);
      } catch (error) {
        console.error("coflux: a feed handler failed", error);
      }
    }
  }

  private receive(data: unknown): void {
    let frame: unknown;
    try {
      frame = JSON.parse(String(data));
    } catch {
      return;
    }
    for (const message of Array.isArray(frame) ? frame : [frame]) {
      if (!message || typeof message !== "object") continue;
      const m = message as Record<string, unknown>;
      if ("re" in m) {
        const pending = this.pending.get(m.re as number);
        if (!pending) continue;
        this.pending.delete(m.re as number);
        if ("err" in m) pending.reject(m.err as { code: string; message: string });
        else pending.resolve(m.ok);
      } else if (m.op === Push.EVENTS && Array.isArray(m.events)) {
        for (const item of m.events as { topic?: string; data?: FeedEvent }[]) this.push(item.topic, item.data);
      }
    }
  }

  private push(name: string | undefined, event: FeedEvent | undefined): void {
    if (!name || !event) return;
    const topic = this.topics.get(name);
    if (!topic) return;
    if (!topic.synced) topic.held.push(event);
    else this.deliver(topic, event);
  }
}
