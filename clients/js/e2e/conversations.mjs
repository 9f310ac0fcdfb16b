// Driven by tests/test_demo_browser.py: conversations on the demo page in headless Chromium
// (Debian's, through playwright-core). Alice opens a direct room with Bob, who is logged in on
// two devices: both see the unread badge, it clears on one when he reads on the other; he
// sees her typing; she sees her message seen; she edits it, then deletes it, and he sees both.
// Prints "RESULT ok" at the end, or throws.
import assert from "node:assert/strict";
import { launch } from "./launch.mjs";

const [url, tenant, password, screenshot] = process.argv.slice(2);
const browser = await launch();
try {
  const page = async () => {
    const p = await (await browser.newContext()).newPage();
    p.setDefaultTimeout(30000);
    return p;
  };
  const [alice, laptop, phone] = [await page(), await page(), await page()];
  async function login(p, username) {
    await p.goto(url);
    await p.fill("#tenant", tenant);
    await p.fill("#username", username);
    await p.fill("#password", password);
    await p.click("#login button[type=submit]");
    await p.waitForSelector("#status.live");
  }
  await login(alice, "alice");
  await login(laptop, "bob");
  await login(phone, "bob");

  // Alice opens the direct room from the form; it is listed under her DMs, active.
  await alice.getByLabel("Message a user").fill("bob");
  await alice.getByRole("button", { name: "Open" }).click();
  await alice.waitForSelector("#dms li.active");
  assert.equal((await alice.textContent("#dms li.active span")).trim(), "@ bob");
  await alice.fill("#body", "hello bob");
  await alice.press("#body", "Enter");
  await alice.waitForSelector('#messages .msg[data-seq="1"]');

  // Both of Bob's devices find the room and show one unread message.
  for (const device of [laptop, phone]) {
    await device.waitForFunction(() => document.querySelector("#dms li .badge")?.textContent === "1");
    assert.equal((await device.textContent("#dms li span")).trim(), "@ alice");
  }
  // He reads it on the laptop: the phone's badge clears, and Alice sees it seen.
  await laptop.click("#dms li");
  await laptop.waitForSelector('#messages .msg[data-seq="1"]');
  await phone.waitForFunction(() => document.querySelector("#dms li .badge")?.textContent === "");
  await alice.waitForSelector('#messages .msg[data-seq="1"] .seen');

  // Alice types: the laptop (in the room) shows it.
  await alice.type("#body", "are you th", { delay: 30 });
  await laptop.waitForFunction(() => /alice is typing/.test(document.querySelector("#typing").textContent));
  await alice.fill("#body", "");

  // She edits her message, then deletes it; Bob sees both, in place.
  await alice.hover('#messages .msg[data-seq="1"]');
  await alice.click('#messages .msg[data-seq="1"] .edit');
  assert.equal(await alice.inputValue("#body"), "hello bob");
  await alice.fill("#body", "hello, bob");
  await alice.press("#body", "Enter");
  await laptop.waitForFunction(() => {
    const msg = document.querySelector('#messages .msg[data-seq="1"]');
    return msg?.querySelector(".body").textContent === "hello, bob" && msg.querySelector(".edited");
  });
  if (screenshot) await laptop.screenshot({ path: screenshot.replace(/\.png$/, "-edited.png") });
  await alice.hover('#messages .msg[data-seq="1"]');
  await alice.click('#messages .msg[data-seq="1"] .delete');
  await laptop.waitForSelector('#messages .msg.deleted[data-seq="1"]');
  assert.equal(await laptop.textContent('#messages .msg[data-seq="1"] .body'), "message deleted");
  // The edit and delete entries change the message; they are not lines of their own.
  assert.equal(await laptop.locator("#messages .msg").count(), 1);

  // A reload shows the current state from history.
  await laptop.reload();
  await laptop.waitForSelector('#messages .msg.deleted[data-seq="1"]');
  if (screenshot) await laptop.screenshot({ path: screenshot });
  console.log("RESULT ok");
} finally {
  await browser.close();
}
