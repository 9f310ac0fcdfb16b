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
export interface Presence { room: string; user: string; event: "join" | "leave"; online: number }
export interface Ack { room: string; seq: number; client_msg_id?: string | null }
export interface Signal { room: string; user: string; data: unknown }
export interface ReadPosition { room: string; user: string; seq: number }

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
  unread: { unread: number; lastRead: number };
  /** The join asked for entries retention deleted: what is kept starts at `firstSeq`. */
  truncated: { firstSeq: number };
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
export class Room extends Emitter<RoomEvents> {
  /** The last seq delivered to the app (resume point). */
  lastSeq: number | null;
  /** Users present now, as announced by presence events since the last join. */
  readonly online = new Set<string>();
  /** This user's read position, and the messages from others after it (from `joined`,
   * then counted as they arrive; capped by the server at its `unread_cap`). */
  lastRead = 0;
  unread = 0;
  /** Other members' read positions (read receipts, private rooms only). */
  readonly readers = new Map<string, number>();
  /** The room's last seq at the latest join: what a replay delivers up to it is already
   * counted in `joined.unread`, so only later messages change the count. */
  private joinedSeq = 0;

  constructor(private host: RoomHost, readonly name: string, since: number | null) {
    super();
    this.lastSeq = since;
  }

  send(body: string, clientMsgId?: string): Promise<Ack> {
    return this.host.send(this.name, body, clientMsgId);
  }

  /** An ephemeral event for the room's other connections: never stored; dropped offline. */
  signal(data: unknown): void {
    this.host.frame({ type: "signal", room: this.name, data });
  }

  /** Move this user's read position (default: the last message delivered). */
  read(seq?: number): void {
    const upto = seq ?? this.lastSeq ?? 0;
    if (upto > this.lastRead) this.host.frame({ type: "read", room: this.name, seq: upto });
  }

  /** Replace the text of one's own message: resolves with the ack of the `edit` entry. */
  edit(seq: number, body: string): Promise<Ack> {
    return this.host.request({ type: "edit", room: this.name, seq, body });
  }

  /** Delete a message (one's own; any, for an admin). */
  delete(seq: number): Promise<Ack> {
    return this.host.request({ type: "delete", room: this.name, seq });
  }

  history(options: { before?: number; limit?: number } = {}): Promise<unknown> {
    const q = new URLSearchParams({ limit: String(options.limit ?? 50) });
    if (options.before !== undefined) q.set("before", String(options.before));
    return this.host.http(`/rooms/${encodeURIComponent(this.name)}/messages?${q}`);
  }

  /** @internal The `ref` of join frames, echoed by an error that refuses the join. */
  get joinRef(): string {
    return `join:${this.name}`;
  }

  /** @internal */ joinFrame(): Record<string, unknown> {
    const ref = this.joinRef;
    return this.lastSeq === null
      ? { type: "join", room: this.name, ref }
      : { type: "join", room: this.name, since: this.lastSeq, ref };
  }

  /** @internal */ onJoined(frame: JoinedFrame): void {
    if (this.lastSeq === null) this.lastSeq = frame.seq; // no `since`: start at the live edge
    this.online.clear();
    this.joinedSeq = frame.seq;
    if (frame.truncated && frame.first_seq !== undefined) {
      this.emit("truncated", { firstSeq: frame.first_seq });
    }
    this.setUnread(frame.unread ?? 0, frame.last_read ?? 0);
  }

  /** @internal Dedupe by seq: a replay may overlap what was already delivered. */
  onMessage(frame: Record<string, unknown>): boolean {
    const seq = frame.seq as number;
    if (this.lastSeq !== null && seq <= this.lastSeq) return false;
    this.lastSeq = seq;
    const { type: _type, ...rest } = frame;
    const message = rest as Message;
    this.emit("message", message);
    if (message.kind === "edit" || message.kind === "delete") this.emit(message.kind, message);
    else if (seq <= this.joinedSeq) return true; // a replay: counted by `joined` already
    else if (message.sender === this.host.me()) this.setUnread(0, seq); // sending reads
    else this.setUnread(this.unread + 1, this.lastRead);
    return true;
  }

  /** @internal */ onPresence(frame: Presence): void {
    if (frame.event === "join") this.online.add(frame.user);
    else this.online.delete(frame.user);
    this.emit("presence", frame);
    this.emit("online", [...this.online]);
  }

  /** @internal The full list, read over HTTP after each join (events only carry changes). */
  async loadPresence(): Promise<void> {
    const now = (await this.host.http(`/rooms/${encodeURIComponent(this.name)}/presence`)) as {
      users: { username: string }[];
    };
    this.online.clear();
    for (const u of now.users) this.online.add(u.username);
    this.emit("online", [...this.online]);
  }

  /** @internal */ onSignal(frame: Signal): void {
    this.emit("signal", frame);
  }

  /** @internal This user's own position clears the count when it reaches the last message
   * delivered; another member's is a read receipt. */
  onRead(frame: ReadPosition): void {
    if (frame.user === this.host.me()) {
      const caughtUp = frame.seq >= (this.lastSeq ?? 0);
      this.setUnread(caughtUp ? 0 : this.unread, Math.max(this.lastRead, frame.seq));
    } else {
      this.readers.set(frame.user, Math.max(this.readers.get(frame.user) ?? 0, frame.seq));
    }
    this.emit("read", frame);
  }

  private setUnread(unread: number, lastRead: number): void {
    if (unread === this.unread && lastRead === this.lastRead) return;
    this.unread = unread;
    this.lastRead = lastRead;
    this.emit("unread", { unread, lastRead });
  }

  /** @internal */ clearPresence(): void {
    this.online.clear();
    this.emit("online", []);
  }
}
