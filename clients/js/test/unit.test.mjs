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

function fakeHost(frames = []) {
  return {
    send: async () => ({}), request: async () => ({}), frame: (f) => frames.push(f),
    http: async () => ({}), me: () => "me",
  };
}

test("a room delivers each seq once, in order", () => {
  const room = new Room(fakeHost(), "general", 0);
  const seen = [];
  room.on("message", (m) => seen.push(m.seq));
  for (const seq of [1, 2, 2, 1, 3]) room.onMessage({ type: "message", room: "general", seq });
  assert.deepEqual(seen, [1, 2, 3]);
  assert.deepEqual(room.joinFrame(), { type: "join", room: "general", since: 3, ref: "join:general" });
  const live = new Room(fakeHost(), "x", null);
  assert.deepEqual(live.joinFrame(), { type: "join", room: "x", ref: "join:x" });
  live.onJoined({ seq: 41 });
  assert.equal(live.lastSeq, 41);
});

test("unread counts: joined, messages from others, own sends and reads, receipts", () => {
  const frames = [];
  const room = new Room(fakeHost(frames), "dm", null);
  const counts = [];
  room.on("unread", (u) => counts.push(u.unread));
  room.onJoined({ seq: 5, last_read: 3, unread: 2 });
  const msg = (seq, sender, kind = "user") => room.onMessage({ type: "message", seq, sender, kind });
  msg(4, "bob"); // the replay up to the joined seq is in `unread` already
  msg(5, "me");
  assert.equal(room.unread, 2);
  msg(6, "bob");
  msg(7, "bob", "edit"); // an edit is not unread
  assert.equal(room.unread, 3);
  room.onRead({ room: "dm", user: "me", seq: 5 }); // another device read up to 5: not caught up
  assert.equal(room.unread, 3);
  assert.equal(room.lastRead, 5);
  room.onRead({ room: "dm", user: "me", seq: 7 }); // caught up
  assert.equal(room.unread, 0);
  msg(8, "bob");
  msg(9, "me"); // sending reads up to it
  assert.equal(room.unread, 0);
  assert.equal(room.lastRead, 9);
  room.onRead({ room: "dm", user: "bob", seq: 9 });
  assert.equal(room.readers.get("bob"), 9);
  assert.deepEqual(counts, [2, 3, 3, 0, 1, 0]); // the read of 5 moved lastRead only
  room.read(); // nothing new: no frame
  msg(10, "bob");
  room.read();
  assert.deepEqual(frames, [{ type: "read", room: "dm", seq: 10 }]);
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
