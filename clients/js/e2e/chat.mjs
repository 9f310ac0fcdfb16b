// Driven by tests/test_client_js.py against a real `switchboard serve`: a sender sends TOTAL
// messages through the client while the test kills and restarts the server; a receiver
// stays subscribed. Prints "acked N" as acks arrive and one "RESULT {json}" at the end.
import assert from "node:assert/strict";
import WebSocket from "ws";
import { Switchboard } from "../dist/index.js";

const [url, tenant, password, total] = [process.argv[2], process.argv[3], process.argv[4], Number(process.argv[5])];

function tokens(username) {
  let token = null;
  return async () => {
    if (token) return token;
    const r = await fetch(`${url}/auth/login`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ tenant, username, password }),
    });
    if (!r.ok) throw Object.assign(new Error("login failed"), await r.json());
    token = (await r.json()).access_token;
    return token;
  };
}

const options = { url, WebSocket, backoffBaseMs: 100, backoffCapMs: 1000, pingIntervalMs: 2000, pingTimeoutMs: 2000 };
const sender = new Switchboard({ ...options, getToken: tokens("alice") });
const receiver = new Switchboard({ ...options, getToken: tokens("bob") });
const states = [];
receiver.on("state", (s) => states.push(s));
const inbox = await receiver.join("general", { since: 0 });
const outbox = await sender.join("general", { since: 0 });
await assert.rejects(sender.join("no-such-room"), { code: "room_not_found" }); // not a hang
const seen = [];
const allSeen = new Promise((resolve) => inbox.on("message", (m) => {
  seen.push(m.seq);
  if (seen.length >= total) resolve();
}));
let acked = 0;
const acks = [];
const inFlight = new Set();
for (let i = 0; i < total; i++) {
  while (inFlight.size >= 20) await Promise.race(inFlight);
  const p = outbox.send(`m${i}`, `c${i}`).then((ack) => {
    acks.push(ack.seq);
    console.log(`acked ${++acked}`);
    inFlight.delete(p);
  });
  inFlight.add(p);
}
await Promise.all(inFlight);
await allSeen;
console.log("RESULT " + JSON.stringify({ seen, acks, states }));
await sender.close();
await receiver.close();
process.exit(0);
