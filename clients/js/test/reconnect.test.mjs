// The connection state machine against a scripted fake server: a silent link is dropped by
// the ping deadline, and the new connection rejoins with `since` and resends the outbox.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Switchboard } from "../dist/index.js";

const sockets = [];
class FakeSocket {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    sockets.push(this);
    setTimeout(() => { this.readyState = 1; this.onopen?.({}); this.push({ type: "ready", user: "u", tenant: "t", role: "member", expires_at: Date.now() / 1000 + 900 }); }, 1);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close() { this.readyState = 3; } // a dead link: no close event ever comes
  push(frame) { this.onmessage?.({ data: JSON.stringify(frame) }); }
}

const until = async (check) => { for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10)); assert.ok(check()); };

test("a silent link is dropped and the session resumes on a new one", async () => {
  let tickets = 0;
  globalThis.fetch = async () => ({ ok: true, json: async () => ({ ticket: `t${++tickets}` }) });
  const sb = new Switchboard({ url: "http://fake", getToken: async () => "token", WebSocket: FakeSocket,
                               pingIntervalMs: 40, pingTimeoutMs: 40, backoffBaseMs: 1, backoffCapMs: 5 });
  const states = [];
  sb.on("state", (s) => states.push(s));
  await until(() => sockets.length === 1 && sockets[0].readyState === 1);
  const joining = sb.join("general", { since: 0 });
  await until(() => sockets[0].sent.some((f) => f.type === "join"));
  sockets[0].push({ type: "joined", room: "general", seq: 2, online: 1 });
  const room = await joining;
  const seen = [];
  room.on("message", (m) => seen.push(m.seq));
  for (const seq of [1, 2]) sockets[0].push({ type: "message", room: "general", seq, sender: "a", body: "x", ts: "", kind: "user" });
  const acked = room.send("hello", "m-1");
  await until(() => sockets[0].sent.some((f) => f.type === "send"));
  // The link goes silent: the server answers nothing, not even pings.
  await until(() => sockets.length === 2 && sockets[1].readyState === 1);
  assert.ok(states.includes("reconnecting"));
  await until(() => sockets[1].sent.some((f) => f.type === "send"));
  const [join, send] = sockets[1].sent.filter((f) => f.type !== "ping");
  assert.deepEqual(join, { type: "join", room: "general", since: 2, ref: "join:general" });
  assert.deepEqual(send, { type: "send", room: "general", body: "hello", client_msg_id: "m-1", ref: "m-1" });
  sockets[1].push({ type: "joined", room: "general", seq: 3, online: 1 });
  for (const seq of [2, 3]) sockets[1].push({ type: "message", room: "general", seq, sender: "a", body: "x", ts: "", kind: "user" });
  sockets[1].push({ type: "ack", room: "general", seq: 3, client_msg_id: "m-1" });
  assert.equal((await acked).seq, 3);
  assert.deepEqual(seen, [1, 2, 3]); // seq 2 came twice, delivered once
  assert.deepEqual(sb.pending(), []);
  sockets[0].push({ type: "message", room: "general", seq: 9, sender: "a", body: "late", ts: "", kind: "user" });
  assert.deepEqual(seen, [1, 2, 3]); // nothing from the abandoned socket
  await sb.close();
});
