import { Emitter } from "./emitter.js";
import { type OutboxStorage } from "./outbox.js";
import { Room } from "./room.js";
export { closeAction, fullJitter } from "./backoff.js";
export { Outbox, type OutboxStorage, type PendingSend } from "./outbox.js";
export { Room, type Ack, type Message, type Presence, type ReadPosition, type Signal, } from "./room.js";
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
/** A direct room as `GET /dms` lists it. */
export interface DirectRoom {
    name: string;
    with: string;
    last_seq: number;
    last_read: number;
    unread: number;
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
    /** Edits and deletes, by ref: answered by an ack or an error, failed by a disconnect (an
     * edit is not idempotent, so it is never resent by itself). */
    private requests;
    private requestCount;
    /** The username this socket is authenticated as (from `ready`). */
    me: string | null;
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
    /** The direct room with `username`, created on first use; join it by its `name`. */
    openDm(username: string): Promise<{
        name: string;
        dm: {
            with: string;
        };
    }>;
    /** The user's direct rooms, with unread counts. */
    dms(): Promise<DirectRoom[]>;
    /** Pending sends (for a "sending…" marker in the UI). */
    pending(): import("./outbox.js").PendingSend[];
    close(): Promise<void>;
    private host;
    private request;
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
