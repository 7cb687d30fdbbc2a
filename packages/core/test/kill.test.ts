// kill -9 of a writer process mid-stream, again and again, each time restarted the way a
// client would: re-sending from a little before its last acknowledged nonce. Afterwards
// every acknowledged item is stored exactly once, offsets are dense, nonces contiguous.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Item } from "../src/format/records.ts";
import { StoreReader } from "../src/reader/store-reader.ts";
import { openStore } from "../src/storage/store-url.ts";
import { StoreWriter } from "../src/writer/store-writer.ts";
import { backends } from "./backends.ts";
import { readKey } from "./read-key.ts";

const child = new URL("./fixtures/append-until-killed.ts", import.meta.url).pathname;
const ROUNDS = 6;

/** Runs the writer process until it has acknowledged some items, then SIGKILLs it. */
async function runAndKill(url: string, firstNonce: bigint, round: number, acks: (key: string, value: string) => void) {
  const proc = spawn(process.execPath, [child, url, String(firstNonce), String(round)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.on("exit", (_code, signal) => resolve(signal)));
  let acked = 0;
  const lines = createInterface({ input: proc.stdout });
  // Running means it has acknowledged something (a loaded machine may take a while).
  const running = new Promise<void>((resolve) => {
    lines.on("line", (line) => {
      if (line === "ready") return;
      const [word, key, value] = line.split(" ");
      assert.equal(word, "ack", `unexpected output: ${line}`);
      acks(key as string, value as string);
      acked++;
      resolve();
    });
  });
  await Promise.race([running, exited]);
  // A random moment, so kills land in claims, data PUTs, merges, deletes and watermark writes.
  await sleep(Math.floor(Math.random() * 400));
  proc.kill("SIGKILL");
  assert.equal(await exited, "SIGKILL", "the writer was running until killed");
  lines.close();
  return acked;
}

const readAll = (reader: StoreReader, key: string) => readKey(reader, { key, maxSize: 97 });

for (const backend of backends()) {
  describe(`kill -9 (${backend.name})`, () => {
    it("loses no acknowledged item and shows no duplicate or gap", async (t) => {
      const { url, cleanup } = await backend.open();
      const { store, prefix } = openStore(url);
      try {
        await new StoreWriter({ store, prefix }).createKeyspace("ks");
        const ackedNonces = new Set<bigint>();
        const ackedPlain = new Set<string>();
        let resumeAt = 0n;
        for (let round = 0; round < ROUNDS; round++) {
          const acked = await runAndKill(url, resumeAt, round, (key, value) => {
            if (key === "nonced") ackedNonces.add(BigInt(value.slice(1)));
            else ackedPlain.add(value);
          });
          assert.ok(acked > 0, `round ${round} acknowledged something before the kill`);
          const maxAcked = [...ackedNonces].reduce((a, b) => (a > b ? a : b), -1n);
          // Re-send a few acknowledged items too: they must come back as duplicates.
          resumeAt = maxAcked + 1n > 5n ? maxAcked + 1n - 5n : 0n;
        }

        const reader = new StoreReader({ store, prefix });
        const nonced = await readAll(reader, "nonced");
        assert.deepEqual(
          nonced.map((i) => i.offset),
          nonced.map((_, i) => BigInt(i)),
          "offsets dense from 0",
        );
        assert.deepEqual(
          nonced.map((i) => i.nonce),
          nonced.map((_, i) => BigInt(i)),
          "nonces stored once each and contiguous: no duplicate, no gap",
        );
        for (const item of nonced) assert.equal(Buffer.from(item.value).toString(), `v${item.nonce}`);
        for (const nonce of ackedNonces) assert.ok(nonce < BigInt(nonced.length), `acknowledged nonce ${nonce} stored`);

        const plain = (await readAll(reader, "plain")).map((i) => Buffer.from(i.value).toString());
        assert.equal(new Set(plain).size, plain.length, "no plain item stored twice");
        const stored = new Set(plain);
        for (const value of ackedPlain) assert.ok(stored.has(value), `acknowledged ${value} stored`);
        t.diagnostic(
          `${ROUNDS} kills; nonced: ${nonced.length} stored, ${ackedNonces.size} acked; plain: ${plain.length} stored, ${ackedPlain.size} acked`,
        );
        // Reading backwards gives the same items.
        const backwards: Item[] = [];
        let continuation: string | undefined;
        do {
          const page = await reader.readPage("ks", "nonced", { order: "backwards", maxSize: 89, continuation });
          backwards.push(...page.items);
          continuation = page.continuation;
        } while (continuation);
        assert.deepEqual(
          backwards.map((i) => i.offset),
          nonced.map((i) => i.offset).reverse(),
        );
      } finally {
        await store.close();
        await cleanup();
      }
    });
  });
}
