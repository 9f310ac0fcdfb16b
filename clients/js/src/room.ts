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
export interface Presence { room: string; user: string; event: "join" | "leave"; online: number }
export interface Ack { room: string; seq: number; client_msg_id?: string | null }

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
export class Room extends Emitter<RoomEvents> {
  /** The last seq delivered to the app (resume point). */
  lastSeq: number | null;
  /** Users present now, as announced by presence events since the last join. */
  readonly online = new Set<string>();

  constructor(private host: RoomHost, readonly name: string, since: number | null) {
    super();
    this.lastSeq = since;
  }

  send(body: string, clientMsgId?: string): Promise<Ack> {
    return this.host.send(this.name, body, clientMsgId);
  }

  signal(data: unknown): void {
    this.host.frame({ type: "signal", room: this.name, data });
  }

  async read(seq: number): Promise<void> {
    this.host.frame({ type: "read", room: this.name, seq });
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

  /** @internal */ onJoined(frame: { seq: number }): void {
    if (this.lastSeq === null) this.lastSeq = frame.seq; // no `since`: start at the live edge
    this.online.clear();
  }

  /** @internal Dedupe by seq: a replay may overlap what was already delivered. */
  onMessage(frame: Record<string, unknown>): boolean {
    const seq = frame.seq as number;
    if (this.lastSeq !== null && seq <= this.lastSeq) return false;
    this.lastSeq = seq;
    const { type: _type, ...message } = frame;
    this.emit("message", message as Message);
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

  /** @internal */ onOther(kind: "signal" | "read", frame: Record<string, unknown>): void {
    this.emit(kind, frame);
  }

  /** @internal */ clearPresence(): void {
    this.online.clear();
    this.emit("online", []);
  }
}
