// Driven by tests/test_demo_browser.py: two people chat on the demo page in headless Chromium
// (Debian's, through playwright-core; never a downloaded browser). One reloads; the server is
// killed while the other types (the message must show as pending), then restarted (it must be
// delivered exactly once). Talks to the test on stdin/stdout to have the server killed and
// restarted; prints "RESULT ok" at the end, or throws.
import assert from "node:assert/strict";
import { createInterface } from "node:readline";
import { launch } from "./launch.mjs";

const [url, tenant, password, screenshot] = process.argv.slice(2);
const input = createInterface({ input: process.stdin });
const lines = input[Symbol.asyncIterator]();
async function ask(request, answer) {
  console.log(request);
  const { value } = await lines.next();
  assert.equal(value, answer);
}

const browser = await launch();
try {
  const alice = await (await browser.newContext()).newPage();
  const bob = await (await browser.newContext()).newPage();
  for (const page of [alice, bob]) page.setDefaultTimeout(45000);

  async function login(page, username) {
    await page.goto(url);
    await page.fill("#tenant", tenant);
    await page.fill("#username", username);
    await page.fill("#password", password);
    await page.click("#login button[type=submit]");
    await page.waitForSelector("#app:not([hidden])");
    assert.equal(await page.inputValue("#password"), "", "the password field is cleared");
  }
  const seqs = (page) => page.$$eval("#messages .msg:not(.pending)", (els) => els.map((e) => Number(e.dataset.seq)));
  const bodies = (page) => page.$$eval("#messages .msg .body", (els) => els.map((e) => e.textContent));
  const waitSeq = (page, seq) => page.waitForSelector(`#messages .msg[data-seq="${seq}"]`);
  const online = (page) => page.$$eval("#online li", (els) => els.map((e) => e.textContent));
  async function say(page, text) {
    await page.fill("#body", text);
    await page.press("#body", "Enter");
  }

  await login(alice, "alice");
  await login(bob, "bob");
  // A labelled button creates the room; bob reloads to see it and opens it (the first room).
  await alice.getByLabel("New room").fill("general");
  await alice.getByRole("button", { name: "Create room" }).click();
  await alice.waitForSelector("#rooms li.active");
  await alice.waitForSelector("#status.live");
  await bob.reload();
  await bob.waitForSelector("#status.live");
  await bob.waitForSelector("#rooms li.active");

  await say(alice, "hello bob");
  await waitSeq(bob, 1);
  await say(bob, "hi alice");
  await waitSeq(alice, 2);
  await alice.waitForFunction(() => document.querySelectorAll("#online li").length === 2);
  assert.deepEqual((await online(alice)).sort(), ["alice", "bob"]);

  // Bob reloads: the same two messages, once each; the presence list does not pile up.
  await bob.reload();
  await waitSeq(bob, 2);
  await bob.waitForSelector("#status.live");
  assert.deepEqual(await seqs(bob), [1, 2]);
  assert.deepEqual(await bodies(bob), ["hello bob", "hi alice"]);
  await alice.waitForFunction(() => document.querySelectorAll("#online li").length === 2);
  assert.equal(await alice.locator(".notice").count(), 0, "no join/leave notices pile up");

  // The server dies: the page says so, presence clears, and what alice types waits, pending.
  await ask("KILL", "KILLED");
  await alice.waitForSelector("#status.down");
  await alice.waitForFunction(() => /reconnecting/.test(document.querySelector("#status").textContent));
  assert.deepEqual(await online(alice), []);
  await say(alice, "typed while offline");
  await alice.waitForSelector("#messages .msg.pending");
  assert.equal(await alice.locator("#messages .msg.pending .body").textContent(), "typed while offline");

  // It comes back: the message is sent once, and both pages show 1..3 exactly once.
  await ask("START", "STARTED");
  await waitSeq(alice, 3);
  await waitSeq(bob, 3);
  await alice.waitForSelector("#status.live");
  await alice.waitForFunction(() => !document.querySelector("#messages .msg.pending"));
  for (const page of [alice, bob]) {
    assert.deepEqual(await seqs(page), [1, 2, 3]);
    assert.deepEqual(await bodies(page), ["hello bob", "hi alice", "typed while offline"]);
  }
  await alice.waitForFunction(() => document.querySelectorAll("#online li").length === 2);
  if (screenshot) await alice.screenshot({ path: screenshot });
  console.log("RESULT ok");
} finally {
  input.close(); // else the open stdin keeps node alive
  await browser.close();
}
