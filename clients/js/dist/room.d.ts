import { Emitter } from "./emitter.js";
export interface Message {
    room: string;
    seq: number;
    sender: string;
    body: string;
    ts: string;
    kind: string;
    client_msg_id?: string;
    /** For `edit` and `delete` entries: the seq they act on. */
    target?: number;
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
export interface Signal {
    room: string;
    user: string;
    data: unknown;
}
export interface ReadPosition {
    room: string;
    user: string;
    seq: number;
}
export type RoomEvents = {
    /** Every entry once, in seq order: messages, and the `edit`/`delete` entries. */
    message: Message;
    /** An `edit` entry: show `body` as the new text of message `target`. */
    edit: Message;
    /** A `delete` entry: remove message `target`. */
    delete: Message;
    presence: Presence;
    /** An ephemeral event from another connection (typing, a cursor). */
    signal: Signal;
    /** A read position moved: this user's (another device) or, in a private room, a member's. */
    read: ReadPosition;
    /** The unread count or this user's read position changed. */
    unread: {
        unread: number;
        lastRead: number;
    };
    /** The join asked for entries retention deleted: what is kept starts at `firstSeq`. */
    truncated: {
        firstSeq: number;
    };
    /** The room's online users changed (after a join, on presence, cleared while offline). */
    online: string[];
};
/** The client's side of a room, implemented by Switchboard. */
export interface RoomHost {
    send(room: string, body: string, clientMsgId?: string): Promise<Ack>;
    request(frame: Record<string, unknown>): Promise<Ack>;
    frame(frame: Record<string, unknown>): void;
    http(path: string): Promise<unknown>;
    me(): string | null;
}
interface JoinedFrame {
    seq: number;
    last_read?: number;
    unread?: number;
    truncated?: boolean;
    first_seq?: number;
}
/** A joined room: every message once, in seq order, across reconnects. */
export declare class Room extends Emitter<RoomEvents> {
    private host;
    readonly name: string;
    /** The last seq delivered to the app (resume point). */
    lastSeq: number | null;
    /** Users present now, as announced by presence events since the last join. */
    readonly online: Set<string>;
    /** This user's read position, and the messages from others after it (from `joined`,
     * then counted as they arrive; capped by the server at its `unread_cap`). */
    lastRead: number;
    unread: number;
    /** Other members' read positions (read receipts, private rooms only). */
    readonly readers: Map<string, number>;
    /** The room's last seq at the latest join: what a replay delivers up to it is already
     * counted in `joined.unread`, so only later messages change the count. */
    private joinedSeq;
    constructor(host: RoomHost, name: string, since: number | null);
    send(body: string, clientMsgId?: string): Promise<Ack>;
    /** An ephemeral event for the room's other connections: never stored; dropped offline. */
    signal(data: unknown): void;
    /** Move this user's read position (default: the last message delivered). */
    read(seq?: number): void;
    /** Replace the text of one's own message: resolves with the ack of the `edit` entry. */
    edit(seq: number, body: string): Promise<Ack>;
    /** Delete a message (one's own; any, for an admin). */
    delete(seq: number): Promise<Ack>;
    history(options?: {
        before?: number;
        limit?: number;
    }): Promise<unknown>;
    /** @internal The `ref` of join frames, echoed by an error that refuses the join. */
    get joinRef(): string;
    /** @internal */ joinFrame(): Record<string, unknown>;
    /** @internal */ onJoined(frame: JoinedFrame): void;
    /** @internal Dedupe by seq: a replay may overlap what was already delivered. */
    onMessage(frame: Record<string, unknown>): boolean;
    /** @internal */ onPresence(frame: Presence): void;
    /** @internal The full list, read over HTTP after each join (events only carry changes). */
    loadPresence(): Promise<void>;
    /** @internal */ onSignal(frame: Signal): void;
    /** @internal This user's own position clears the count when it reaches the last message
     * delivered; another member's is a read receipt. */
    onRead(frame: ReadPosition): void;
    private setUnread;
    /** @internal */ clearPresence(): void;
}
export {};
