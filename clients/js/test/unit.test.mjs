// Unit tests: backoff, close actions, dedupe by seq, the outbox.
import assert from "node:assert/strict";
import { test } from "node:test";
import { closeAction, fullJitter, Outbox, Room } from "../dist/index.js";

test("full jitter stays under the capped exponential", () => {
  for (let attempt = 0; attempt < 40; attempt++) {
    const bound = Math.min(15000, 500 * 2 ** attempt);
    assert.equal(fullJitter(attempt, 500, 15000, () => 0.999999) < bound, true);
    assert.equal(fullJitter(attempt, 500, 15000, () => 0), 0);
  }
  assert.equal(fullJitter(3, 500, 15000, () => 0.5), 2000);
});

test("close actions follow the close table", () => {
  assert.equal(closeAction(1008, "expired_token"), "refresh");
  assert.equal(closeAction(1008, "revoked"), "stop");
  assert.equal(closeAction(1008, "invalid_token"), "stop");
  assert.equal(closeAction(1012, "shutdown"), "reconnect");
  assert.equal(closeAction(1013, "slow_consumer"), "reconnect");
  assert.equal(closeAction(1006, ""), "reconnect");
  assert.equal(closeAction(1000, "idle"), "stop");
});

test("a room delivers each seq once, in order", () => {
  const room = new Room({ send: async () => ({}), frame() {}, http: async () => ({}) }, "general", 0);
  const seen = [];
  room.on("message", (m) => seen.push(m.seq));
  for (const seq of [1, 2, 2, 1, 3]) room.onMessage({ type: "message", room: "general", seq });
  assert.deepEqual(seen, [1, 2, 3]);
  assert.deepEqual(room.joinFrame(), { type: "join", room: "general", since: 3, ref: "join:general" });
  const live = new Room({ send: async () => ({}), frame() {}, http: async () => ({}) }, "x", null);
  assert.deepEqual(live.joinFrame(), { type: "join", room: "x", ref: "join:x" });
  live.onJoined({ seq: 41 });
  assert.equal(live.lastSeq, 41);
});

test("the outbox keeps order, removes on ack and persists through its storage", async () => {
  let saved = [];
  const storage = { load: () => [{ room: "r", body: "old", clientMsgId: "a" }], save: (x) => { saved = x; } };
  const outbox = new Outbox(storage);
  assert.deepEqual((await outbox.restore()).map((p) => p.clientMsgId), ["a"]);
  outbox.add({ room: "r", body: "b", clientMsgId: "b" });
  outbox.add({ room: "r", body: "c", clientMsgId: "c" });
  outbox.add({ room: "r", body: "b again", clientMsgId: "b" }); // same id: one entry
  assert.deepEqual(outbox.pending().map((p) => p.clientMsgId), ["a", "b", "c"]);
  outbox.remove("a");
  assert.deepEqual(saved.map((p) => p.clientMsgId), ["b", "c"]);
});
