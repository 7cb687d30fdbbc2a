// The CLI in direct mode on a store whose writers use the shared log (docs/log.md): reads
// and stat see the items still only in a log; append, trim and import, which would commit
// per-key objects the logs' key states do not see, are refused (exit 1, naming the store and
// what to use instead) and write nothing.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { LogWriter, openStore } from "@klstore/core";
import { backends } from "../../core/test/backends.ts";

const MAIN = new URL("../src/main.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "klstore-log-store-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function klstore(url: string, ...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [MAIN, "--store", url, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const [code] = await once(child, "exit");
  return { code: code as number | null, out, err };
}

const values = (out: string) =>
  out
    .split("\n")
    .filter((l) => l)
    .map((l) => (JSON.parse(l) as { value: string }).value);

for (const backend of backends()) {
  describe(`klstore in direct mode on a shared-log store (${backend.name})`, () => {
    it("reads the logs' items and refuses append, trim and import, writing nothing", async () => {
      const { url, cleanup } = await backend.open();
      const { store, prefix } = openStore(url);
      try {
        // A writer shard's log, closed before its materialization is due: the items are
        // in its segment only.
        const shard = new LogWriter({ store, prefix, name: "writer-0", log: { logDutyCycleMillis: 0 } });
        await shard.open();
        await shard.createKeyspace("ks");
        await shard.appendList("ks", "k", [{ value: Buffer.from("one") }, { value: Buffer.from("two") }]);
        await shard.close();
        assert.deepEqual((await store.list(`${prefix}ks/k/`)).objects, [], "no per-key object yet");

        const read = await klstore(url, "read", "ks", "k");
        assert.equal(read.code, 0, read.err);
        assert.deepEqual(values(read.out), ["one", "two"]);
        const stat = await klstore(url, "stat", "ks", "k");
        assert.equal(stat.code, 0, stat.err);
        assert.match(stat.out, /"next_offset":\s*"?2/);

        const refusals = [
          [await klstore(url, "append", "ks", "k", "three"), /append and trim through the writer service \(--writer/],
          [await klstore(url, "trim", "ks", "k", "--before-offset", "1"), /append and trim through the writer service/],
          [
            await klstore(url, "import", "ks", writeJsonl(backend.name)),
            /klstore import writes per-key objects and cannot import into it yet/,
          ],
        ] as const;
        for (const [run, why] of refusals) {
          assert.equal(run.code, 1, run.err);
          assert.match(run.err, /is written through the shared log \(\[log\] enabled, docs\/log\.md\)/);
          assert.match(run.err, why);
        }
        assert.deepEqual(values((await klstore(url, "read", "ks", "k")).out), ["one", "two"], "nothing written");
        assert.deepEqual((await store.list(`${prefix}ks/k/`)).objects, [], "no per-key object");
      } finally {
        await store.close();
        await cleanup();
      }
    });
  });
}

function writeJsonl(name: string): string {
  const path = join(dir, `rows-${name}.jsonl`);
  writeFileSync(path, '{"key":"k","value":"imported"}\n');
  return path;
}
