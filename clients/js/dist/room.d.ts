import { Emitter } from "./emitter.js";
export interface Message {
    room: string;
    seq: number;
    sender: string;
    body: string;
    ts: string;
    kind: string;
    client_msg_id?: string;
    [extra: string]: unknown;
}
export interface Presence {
    room: string;
    user: string;
    event: "join" | "leave";
    online: number;
}
export interface Ack {
    room: string;
    seq: number;
    client_msg_id?: string | null;
}
export type RoomEvents = {
    message: Message;
    presence: Presence;
    signal: Record<string, unknown>;
    read: Record<string, unknown>;
    /** The room's online users changed (after a join, on presence, cleared while offline). */
    online: string[];
};
/** The client's side of a room, implemented by Switchboard. */
export interface RoomHost {
    send(room: string, body: string, clientMsgId?: string): Promise<Ack>;
    frame(frame: Record<string, unknown>): void;
    http(path: string): Promise<unknown>;
}
/** A joined room: every message once, in seq order, across reconnects. */
export declare class Room extends Emitter<RoomEvents> {
    private host;
    readonly name: string;
    /** The last seq delivered to the app (resume point). */
    lastSeq: number | null;
    /** Users present now, as announced by presence events since the last join. */
    readonly online: Set<string>;
    constructor(host: RoomHost, name: string, since: number | null);
    send(body: string, clientMsgId?: string): Promise<Ack>;
    signal(data: unknown): void;
    read(seq: number): Promise<void>;
    history(options?: {
        before?: number;
        limit?: number;
    }): Promise<unknown>;
    /** @internal The `ref` of join frames, echoed by an error that refuses the join. */
    get joinRef(): string;
    /** @internal */ joinFrame(): Record<string, unknown>;
    /** @internal */ onJoined(frame: {
        seq: number;
    }): void;
    /** @internal Dedupe by seq: a replay may overlap what was already delivered. */
    onMessage(frame: Record<string, unknown>): boolean;
    /** @internal */ onPresence(frame: Presence): void;
    /** @internal The full list, read over HTTP after each join (events only carry changes). */
    loadPresence(): Promise<void>;
    /** @internal */ onOther(kind: "signal" | "read", frame: Record<string, unknown>): void;
    /** @internal */ clearPresence(): void;
}
