import { Emitter } from "./emitter.js";
/** A joined room: every message once, in seq order, across reconnects. */
export class Room extends Emitter {
    host;
    name;
    /** The last seq delivered to the app (resume point). */
    lastSeq;
    /** Users present now, as announced by presence events since the last join. */
    online = new Set();
    constructor(host, name, since) {
        super();
        this.host = host;
        this.name = name;
        this.lastSeq = since;
    }
    send(body, clientMsgId) {
        return this.host.send(this.name, body, clientMsgId);
    }
    signal(data) {
        this.host.frame({ type: "signal", room: this.name, data });
    }
    async read(seq) {
        this.host.frame({ type: "read", room: this.name, seq });
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
    }
    /** @internal Dedupe by seq: a replay may overlap what was already delivered. */
    onMessage(frame) {
        const seq = frame.seq;
        if (this.lastSeq !== null && seq <= this.lastSeq)
            return false;
        this.lastSeq = seq;
        const { type: _type, ...message } = frame;
        this.emit("message", message);
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
    /** @internal */ onOther(kind, frame) {
        this.emit(kind, frame);
    }
    /** @internal */ clearPresence() {
        this.online.clear();
        this.emit("online", []);
    }
}
