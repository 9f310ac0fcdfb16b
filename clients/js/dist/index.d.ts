import { Emitter } from "./emitter.js";
import { type OutboxStorage } from "./outbox.js";
import { Room } from "./room.js";
export { closeAction, fullJitter } from "./backoff.js";
export { Outbox, type OutboxStorage, type PendingSend } from "./outbox.js";
export { Room, type Ack, type Message, type Presence } from "./room.js";
export type State = "connecting" | "live" | "reconnecting" | "closed";
export interface SwitchboardError {
    code: string;
    detail: string;
    ref?: unknown;
    retry_after?: number;
}
export interface Broadcast {
    id: number;
    body: string;
    ts: string;
}
export type ClientEvents = {
    state: State;
    error: SwitchboardError;
    closed: {
        code: number;
        reason: string;
    };
    /** The next connection attempt is in `delayMs` (for a countdown). */
    retry: {
        attempt: number;
        delayMs: number;
    };
    /** A tenant-wide announcement. */
    broadcast: Broadcast;
};
type WebSocketLike = {
    readyState: number;
    send(data: string): void;
    close(code?: number, reason?: string): void;
    onopen: ((ev: unknown) => void) | null;
    onmessage: ((ev: {
        data: unknown;
    }) => void) | null;
    onclose: ((ev: {
        code: number;
        reason: string;
    }) => void) | null;
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
export declare class Switchboard extends Emitter<ClientEvents> {
    state: State;
    readonly rooms: Map<string, Room>;
    private outbox;
    private waiting;
    private joinWaiters;
    private ws;
    private attempt;
    private timers;
    private lastFrameAt;
    private retryTimer;
    private opening;
    private readonly o;
    private readonly WS;
    constructor(options: Options);
    /** Join a room (since: resume after that seq; omit to start at the live edge). */
    join(name: string, options?: {
        since?: number;
    }): Promise<Room>;
    /** Pending sends (for a "sending…" marker in the UI). */
    pending(): import("./outbox.js").PendingSend[];
    close(): Promise<void>;
    private host;
    private send;
    private frame;
    private http;
    private isClosed;
    private setState;
    private later;
    /** The device is back online or the page visible again: skip the rest of the backoff. */
    private reconnectNow;
    private open;
    private retry;
    private onFrame;
    private onReady;
    private onError;
}
