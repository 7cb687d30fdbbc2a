// What a short command loads, as a real process with a module hook recording every module
// resolved (import and require): a direct-mode stat on a file:// store loads neither the S3
// SDK nor gRPC nor the services, and --version not even the engine. Start-up time itself is
// measured in bench/src/cli-startup.ts, never asserted here.
// Needs: the filesystem only.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

const MAIN = new URL("../src/main.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "klstore-lazy-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const HOOK = join(dir, "record-modules.mjs");
writeFileSync(
  HOOK,
  `import { registerHooks } from "node:module";
import { appendFileSync } from "node:fs";
registerHooks({
  resolve(specifier, context, next) {
    const resolved = next(specifier, context);
    appendFileSync(process.env.KLSTORE_TEST_MODULES, resolved.url + "\\n");
    return resolved;
  },
});
`,
);

/** Runs the CLI; resolves with the URLs of the modules it loaded. */
function loadedBy(args: readonly string[]): string[] {
  const record = join(dir, `modules-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(record, "");
  const res = spawnSync(process.execPath, ["--import", HOOK, MAIN, ...args], {
    encoding: "utf8",
    env: { ...process.env, KLSTORE_TEST_MODULES: record },
  });
  assert.equal(res.status, 0, res.stderr);
  return readFileSync(record, "utf8").split("\n").filter(Boolean);
}

const heavy = ["@aws-sdk/", "@grpc/grpc-js", "/packages/proto/", "/services/", "/packages/client/", "pino"];
const loadedOf = (modules: readonly string[], part: string) => modules.filter((url) => url.includes(part));

describe("klstore loads only what a command needs", () => {
  const store = `file://${join(dir, "store")}`;

  it("direct-mode stat on a file:// store: the engine, not the S3 SDK, gRPC or the services", () => {
    assert.equal(spawnSync(process.execPath, [MAIN, "--store", store, "keyspace", "create", "ks"]).status, 0);
    assert.equal(spawnSync(process.execPath, [MAIN, "--store", store, "append", "ks", "k", "v"]).status, 0);
    const modules = loadedBy(["--store", store, "stat", "ks", "k"]);
    assert.ok(loadedOf(modules, "/packages/core/src/reader/store-reader.ts").length > 0, "the hook records modules");
    for (const part of heavy) assert.deepEqual(loadedOf(modules, part), [], `${part} is not loaded`);
  });

  it("--version: nothing of klstore beyond the CLI's entry", () => {
    const modules = loadedBy(["--version"]);
    assert.ok(loadedOf(modules, "commander").length > 0, "the hook records modules");
    for (const part of [...heavy, "/packages/core/", "/packages/config/"]) {
      assert.deepEqual(loadedOf(modules, part), [], `${part} is not loaded`);
    }
  });

  it("remote-mode stat loads gRPC (the check above can fail)", () => {
    const res = spawnSync(
      process.execPath,
      ["--import", HOOK, MAIN, "--reader", "127.0.0.1:1", "--timeout", "2000", "stat", "ks", "k"],
      { encoding: "utf8", env: { ...process.env, KLSTORE_TEST_MODULES: join(dir, "remote.txt") } },
    );
    assert.equal(res.status, 1, res.stderr);
    assert.ok(readFileSync(join(dir, "remote.txt"), "utf8").includes("@grpc/grpc-js"));
  });
});
