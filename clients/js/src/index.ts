/**
 * Switchboard's client: one WebSocket, reconnected with full-jitter backoff, every room
 * resumed with `since` (each seq once, in order), sends kept in an outbox until acked and
 * resent with their client_msg_id (stored exactly once), tokens refreshed in-band before
 * they expire, and a dead link found by an app-level ping with a deadline.
 */
import { closeAction, fullJitter } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { newClientMsgId, Outbox, type OutboxStorage } from "./outbox.js";
import { type Ack, Room } from "./room.js";

export { closeAction, fullJitter } from "./backoff.js";
export { Outbox, type OutboxStorage, type PendingSend } from "./outbox.js";
export {
  Room, type Ack, type Message, type Presence, type ReadPosition, type Signal,
} from "./room.js";

export type State = "connecting" | "live" | "reconnecting" | "closed";

export interface SwitchboardError { code: string; detail: string; ref?: unknown; retry_after?: number }

export interface Broadcast { id: number; body: string; ts: string }

/** A direct room as `GET /dms` lists it. */
export interface DirectRoom { name: string; with: string; last_seq: number; last_read: number; unread: number }

export type ClientEvents = {
  state: State;
  error: SwitchboardError;
  closed: { code: number; reason: string };
  /** The next connection attempt is in `delayMs` (for a countdown). */
  retry: { attempt: number; delayMs: number };
  /** A tenant-wide announcement. */
  broadcast: Broadcast;
};

type WebSocketLike = {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
};
type WebSocketCtor = new (url: string) => WebSocketLike;

export interface Options {
  /** http(s) base URL of the server; the ws(s) URL is derived from it. */
  url: string;
  /** An access token: called at connect, before expiry and after 1008 expired_token. */
  getToken: () => Promise<string>;
  /** A WebSocket implementation where there is no global one (Node 20: the `ws` package). */
  WebSocket?: WebSocketCtor;
  outboxStorage?: OutboxStorage;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  refreshMarginMs?: number;
}

const RETRYABLE = new Set(["unavailable", "rate_limited", "internal"]);

export class Switchboard extends Emitter<ClientEvents> {
  state: State = "connecting";
  readonly rooms = new Map<string, Room>();
  private outbox: Outbox;
  private waiting = new Map<string, { resolve: (a: Ack) => void; reject: (e: unknown) => void }>();
  /** Edits and deletes, by ref: answered by an ack or an error, failed by a disconnect (an
   * edit is not idempotent, so it is never resent by itself). */
  private requests = new Map<string, { resolve: (a: Ack) => void; reject: (e: unknown) => void }>();
  private requestCount = 0;
  /** The username this socket is authenticated as (from `ready`). */
  me: string | null = null;
  private joinWaiters = new Map<string, Array<{ resolve: () => void; reject: (e: unknown) => void }>>();
  private ws: WebSocketLike | null = null;
  private attempt = 0;
  private timers = new Set<ReturnType<typeof setTimeout>>();
  private lastFrameAt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private opening = false; // a ticket request is on its way: one connection attempt at a time
  private readonly o: Required<Omit<Options, "outboxStorage" | "WebSocket">>;
  private readonly WS: WebSocketCtor;

  constructor(options: Options) {
    super();
    this.o = {
      backoffBaseMs: 500, backoffCapMs: 15000, pingIntervalMs: 15000, pingTimeoutMs: 10000,
      refreshMarginMs: 30000, ...options,
    };
    const ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!ctor) throw new Error("no WebSocket: pass one (e.g. from the `ws` package)");
    this.WS = ctor;
    this.outbox = new Outbox(options.outboxStorage);
    const g = globalThis as { addEventListener?: (e: string, f: () => void) => void; document?: { visibilityState: string } };
    g.addEventListener?.("online", () => this.reconnectNow());
    g.addEventListener?.("visibilitychange", () => {
      if (g.document?.visibilityState === "visible") this.reconnectNow();
    });
    void this.outbox.restore().then(() => this.open());
  }

  /** Join a room (since: resume after that seq; omit to start at the live edge). */
  async join(name: string, options: { since?: number } = {}): Promise<Room> {
    let room = this.rooms.get(name);
    if (!room) {
      room = new Room(this.host, name, options.since ?? null);
      this.rooms.set(name, room);
    }
    const joined = new Promise<void>((resolve, reject) => {
      this.joinWaiters.set(name, [...(this.joinWaiters.get(name) ?? []), { resolve, reject }]);
    });
    if (this.state === "live") this.frame(room.joinFrame());
    try {
      await joined;
    } catch (err) {
      this.rooms.delete(name); // refused: no such room, a private one, too many rooms
      throw err;
    }
    return room;
  }

  /** The direct room with `username`, created on first use; join it by its `name`. */
  async openDm(username: string): Promise<{ name: string; dm: { with: string } }> {
    return (await this.http("/dms", "POST", { username })) as { name: string; dm: { with: string } };
  }

  /** The user's direct rooms, with unread counts. */
  async dms(): Promise<DirectRoom[]> {
    return (await this.http("/dms")) as DirectRoom[];
  }

  /** Pending sends (for a "sending…" marker in the UI). */
  pending() {
    return this.outbox.pending();
  }

  async close(): Promise<void> {
    this.setState("closed");
    for (const t of this.timers) clearTimeout(t);
    clearTimeout(this.retryTimer);
    this.ws?.close(1000, "client closed");
  }

  // ------------------------------------------------------------------------------------
  private host = {
    send: (room: string, body: string, id?: string) => this.send(room, body, id),
    request: (frame: Record<string, unknown>) => this.request(frame),
    frame: (frame: Record<string, unknown>) => this.frame(frame),
    http: (path: string) => this.http(path),
    me: () => this.me,
  };

  private request(frame: Record<string, unknown>): Promise<Ack> {
    if (this.state !== "live") return Promise.reject(Object.assign(new Error("offline"), { code: "offline" }));
    const ref = `r:${++this.requestCount}`;
    const answered = new Promise<Ack>((resolve, reject) => this.requests.set(ref, { resolve, reject }));
    this.frame({ ...frame, ref });
    return answered;
  }

  private send(room: string, body: string, clientMsgId = newClientMsgId()): Promise<Ack> {
    this.outbox.add({ room, body, clientMsgId });
    const acked = new Promise<Ack>((resolve, reject) => this.waiting.set(clientMsgId, { resolve, reject }));
    if (this.state === "live") this.frame(sendFrame(room, body, clientMsgId));
    return acked;
  }

  private frame(frame: Record<string, unknown>): void {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(frame));
  }

  private async http(path: string, method = "GET", json?: unknown): Promise<unknown> {
    const token = await this.o.getToken();
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (json !== undefined) headers["content-type"] = "application/json";
    const r = await fetch(this.o.url.replace(/\/$/, "") + path, {
      method, headers, body: json === undefined ? undefined : JSON.stringify(json),
    });
    const body = await r.json();
    if (!r.ok) throw Object.assign(new Error(body.detail), body);
    return body;
  }

  private isClosed(): boolean {
    return this.state === "closed";
  }

  private setState(state: State): void {
    if (this.state === state || this.state === "closed") return;
    this.state = state;
    this.emit("state", state);
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => { this.timers.delete(t); fn(); }, ms);
    this.timers.add(t);
  }

  /** The device is back online or the page visible again: skip the rest of the backoff. */
  private reconnectNow(): void {
    if (this.state !== "reconnecting" || this.ws) return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    void this.open();
  }

  private async open(): Promise<void> {
    if (this.state === "closed" || this.ws || this.opening) return;
    let ticket: string;
    this.opening = true;
    try {
      // getToken is asked before every connection: after 1008 expired_token the app's
      // provider must hand out a fresh token (the client never reuses the old one itself).
      ticket = ((await this.http("/auth/ws-ticket", "POST")) as { ticket: string }).ticket;
    } catch (err) {
      const code = (err as { error?: string }).error;
      if (code === "invalid_token" || code === "revoked" || code === "invalid_credentials") {
        this.emit("error", { code, detail: String((err as Error).message) });
        return this.setState("closed");
      }
      return this.retry();
    } finally {
      this.opening = false;
    }
    if (this.isClosed()) return; // closed while the ticket was on its way
    const url = this.o.url.replace(/^http/, "ws").replace(/\/$/, "") + "/ws?ticket=" + encodeURIComponent(ticket);
    const ws = new this.WS(url);
    this.ws = ws;
    let pinger: ReturnType<typeof setInterval> | undefined;
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return; // a socket already given up on
      this.lastFrameAt = Date.now();
      this.onFrame(JSON.parse(String(ev.data)));
    };
    ws.onopen = () => {
      this.lastFrameAt = Date.now();
      pinger = setInterval(() => {
        if (Date.now() - this.lastFrameAt > this.o.pingIntervalMs + this.o.pingTimeoutMs) {
          // A phone that slept, a NAT that forgot us: the link is dead, and a close handshake
          // over it could take minutes. Drop it now and reconnect.
          ws.close(4000, "ping timeout");
          lost({ code: 4000, reason: "ping timeout" });
        } else {
          this.frame({ type: "ping" });
        }
      }, this.o.pingIntervalMs);
    };
    ws.onerror = () => {};
    const lost = (ev: { code: number; reason: string }) => {
      if (this.ws !== ws) return; // already handled (ping timeout, then the late close)
      clearInterval(pinger);
      this.ws = null;
      for (const room of this.rooms.values()) room.clearPresence();
      for (const { reject } of this.requests.values()) {
        reject(Object.assign(new Error("connection lost"), { code: "disconnected" }));
      }
      this.requests.clear();
      this.emit("closed", { code: ev.code, reason: ev.reason });
      if (this.state === "closed") return;
      const action = closeAction(ev.code, ev.reason);
      if (action === "stop") {
        this.setState("closed");
        for (const { reject } of this.waiting.values()) reject(new Error(ev.reason || "closed"));
        return;
      }
      this.retry(); // "refresh" too: the next connection asks getToken again
    };
    ws.onclose = lost;
  }

  private retry(): void {
    if (this.state === "closed") return;
    this.setState("reconnecting");
    const delay = fullJitter(this.attempt, this.o.backoffBaseMs, this.o.backoffCapMs);
    this.emit("retry", { attempt: this.attempt++, delayMs: delay });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.open(), delay);
  }

  private onFrame(f: Record<string, any>): void {
    const room = typeof f.room === "string" ? this.rooms.get(f.room) : undefined;
    const request = typeof f.ref === "string" ? this.requests.get(f.ref) : undefined;
    if (request && (f.type === "ack" || f.type === "error")) {
      this.requests.delete(f.ref);
      if (f.type === "ack") request.resolve(f as Ack);
      else request.reject(Object.assign(new Error(f.detail), f));
      return;
    }
    switch (f.type) {
      case "ready":
        this.me = f.user;
        this.onReady(f.expires_at);
        break;
      case "message":
        room?.onMessage(f);
        break;
      case "ack": {
        this.outbox.remove(f.client_msg_id);
        this.waiting.get(f.client_msg_id)?.resolve(f as Ack);
        this.waiting.delete(f.client_msg_id);
        break;
      }
      case "joined":
        room?.onJoined(f as never);
        room?.loadPresence().catch(() => {}); // advisory: events keep it current after this
        for (const { resolve } of this.joinWaiters.get(f.room) ?? []) resolve();
        this.joinWaiters.delete(f.room);
        break;
      case "presence":
        room?.onPresence(f as never);
        break;
      case "signal":
        room?.onSignal(f as never);
        break;
      case "read":
        room?.onRead(f as never);
        break;
      case "broadcast":
        this.emit("broadcast", f as Broadcast);
        break;
      case "error":
        this.onError(f as SwitchboardError);
        break;
    }
  }

  private onReady(expiresAt: number): void {
    const wasLive = this.state === "live";
    this.setState("live");
    this.attempt = 0;
    const refreshIn = Math.max(expiresAt * 1000 - Date.now() - this.o.refreshMarginMs, 1000);
    this.later(refreshIn, async () => {
      try { this.frame({ type: "auth", token: await this.o.getToken() }); } catch { /* retried at reconnect */ }
    });
    if (wasLive) return; // an in-band refresh: the rooms are already joined
    for (const room of this.rooms.values()) this.frame(room.joinFrame());
    for (const p of this.outbox.pending()) this.frame(sendFrame(p.room, p.body, p.clientMsgId));
  }

  private onError(error: SwitchboardError): void {
    const id = typeof error.ref === "string" ? error.ref : undefined;
    const refused = [...this.rooms.values()].find((r) => r.joinRef === id);
    if (refused && this.joinWaiters.has(refused.name)) {
      const failure = Object.assign(new Error(error.detail), error);
      for (const { reject } of this.joinWaiters.get(refused.name)!) reject(failure);
      this.joinWaiters.delete(refused.name);
      return;
    }
    if (id && this.outbox.has(id)) {
      if (RETRYABLE.has(error.code)) {
        const p = this.outbox.pending().find((x) => x.clientMsgId === id)!;
        this.later((error.retry_after ?? 1) * 1000, () => this.frame(sendFrame(p.room, p.body, id)));
        return;
      }
      this.outbox.remove(id);
      this.waiting.get(id)?.reject(Object.assign(new Error(error.detail), error));
      this.waiting.delete(id);
    }
    this.emit("error", error);
  }
}

function sendFrame(room: string, body: string, id: string): Record<string, unknown> {
  return { type: "send", room, body, client_msg_id: id, ref: id };
}
