import { Emitter } from "./emitter.js";
/** A joined room: every message once, in seq order, across reconnects. */
export class Room extends Emitter {
    host;
    name;
    /** The last seq delivered to the app (resume point). */
    lastSeq;
    /** Users present now, as announced by presence events since the last join. */
    online = new Set();
    /** This user's read position, and the messages from others after it (from `joined`,
     * then counted as they arrive; capped by the server at its `unread_cap`). */
    lastRead = 0;
    unread = 0;
    /** Other members' read positions (read receipts, private rooms only). */
    readers = new Map();
    /** The room's last seq at the latest join: what a replay delivers up to it is already
     * counted in `joined.unread`, so only later messages change the count. */
    joinedSeq = 0;
    constructor(host, name, since) {
        super();
        this.host = host;
        this.name = name;
        this.lastSeq = since;
    }
    send(body, clientMsgId) {
        return this.host.send(this.name, body, clientMsgId);
    }
    /** An ephemeral event for the room's other connections: never stored; dropped offline. */
    signal(data) {
        this.host.frame({ type: "signal", room: this.name, data });
    }
    /** Move this user's read position (default: the last message delivered). */
    read(seq) {
        const upto = seq ?? this.lastSeq ?? 0;
        if (upto > this.lastRead)
            this.host.frame({ type: "read", room: this.name, seq: upto });
    }
    /** Replace the text of one's own message: resolves with the ack of the `edit` entry. */
    edit(seq, body) {
        return this.host.request({ type: "edit", room: this.name, seq, body });
    }
    /** Delete a message (one's own; any, for an admin). */
    delete(seq) {
        return this.host.request({ type: "delete", room: this.name, seq });
    }
    history(options = {}) {
        const q = new URLSearchParams({ limit: String(options.limit ?? 50) });
        if (options.before !== undefined)
            q.set("before", String(options.before));
        return this.host.http(`/rooms/${encodeURIComponent(this.name)}/messages?${q}`);
    }
    /** @internal The `ref` of join frames, echoed by an error that refuses the join. */
    get joinRef() {
        return `join:${this.name}`;
    }
    /** @internal */ joinFrame() {
        const ref = this.joinRef;
        return this.lastSeq === null
            ? { type: "join", room: this.name, ref }
            : { type: "join", room: this.name, since: this.lastSeq, ref };
    }
    /** @internal */ onJoined(frame) {
        if (this.lastSeq === null)
            this.lastSeq = frame.seq; // no `since`: start at the live edge
        this.online.clear();
        this.joinedSeq = frame.seq;
        if (frame.truncated && frame.first_seq !== undefined) {
            this.emit("truncated", { firstSeq: frame.first_seq });
        }
        this.setUnread(frame.unread ?? 0, frame.last_read ?? 0);
    }
    /** @internal Dedupe by seq: a replay may overlap what was already delivered. */
    onMessage(frame) {
        const seq = frame.seq;
        if (this.lastSeq !== null && seq <= this.lastSeq)
            return false;
        this.lastSeq = seq;
        const { type: _type, ...rest } = frame;
        const message = rest;
        this.emit("message", message);
        if (message.kind === "edit" || message.kind === "delete")
            this.emit(message.kind, message);
        else if (seq <= this.joinedSeq)
            return true; // a replay: counted by `joined` already
        else if (message.sender === this.host.me())
            this.setUnread(0, seq); // sending reads
        else
            this.setUnread(this.unread + 1, this.lastRead);
        return true;
    }
    /** @internal */ onPresence(frame) {
        if (frame.event === "join")
            this.online.add(frame.user);
        else
            this.online.delete(frame.user);
        this.emit("presence", frame);
        this.emit("online", [...this.online]);
    }
    /** @internal The full list, read over HTTP after each join (events only carry changes). */
    async loadPresence() {
        const now = (await this.host.http(`/rooms/${encodeURIComponent(this.name)}/presence`));
        this.online.clear();
        for (const u of now.users)
            this.online.add(u.username);
        this.emit("online", [...this.online]);
    }
    /** @internal */ onSignal(frame) {
        this.emit("signal", frame);
    }
    /** @internal This user's own position clears the count when it reaches the last message
     * delivered; another member's is a read receipt. */
    onRead(frame) {
        if (frame.user === this.host.me()) {
            const caughtUp = frame.seq >= (this.lastSeq ?? 0);
            this.setUnread(caughtUp ? 0 : this.unread, Math.max(this.lastRead, frame.seq));
        }
        else {
            this.readers.set(frame.user, Math.max(this.readers.get(frame.user) ?? 0, frame.seq));
        }
        this.emit("read", frame);
    }
    setUnread(unread, lastRead) {
        if (unread === this.unread && lastRead === this.lastRead)
            return;
        this.unread = unread;
        this.lastRead = lastRead;
        this.emit("unread", { unread, lastRead });
    }
    /** @internal */ clearPresence() {
        this.online.clear();
        this.emit("online", []);
    }
}
