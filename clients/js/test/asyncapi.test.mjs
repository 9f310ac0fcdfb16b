// The repository's AsyncAPI document is valid AsyncAPI 3, checked by @asyncapi/parser.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { Parser } from "@asyncapi/parser";

test("docs/asyncapi.yaml parses without errors", async () => {
  const text = await readFile(new URL("../../../docs/asyncapi.yaml", import.meta.url), "utf8");
  const { document, diagnostics } = await new Parser().parse(text);
  const errors = diagnostics.filter((d) => d.severity === 0);
  assert.deepEqual(errors.map((e) => `${e.path.join(".")}: ${e.message}`), []);
  assert.ok(document, "no document");
  const names = document.allMessages().all().map((m) => m.name());
  for (const name of ["send", "join", "message", "ack", "error"]) assert.ok(names.includes(name), name);
});
