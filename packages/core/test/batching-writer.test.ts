// The batching writer: group commit, flush triggers, backpressure, failures of a group,
// commit slots, groups split into bounded objects, and piscina worker threads compacting.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { BatchingConfig } from "../src/config.ts";
import { Fenced, KeyspaceNotFound, ResourceExhausted, ShuttingDown } from "../src/errors.ts";
import { KeyspaceLayout } from "../src/format/layout.ts";
import type { Item } from "../src/format/records.ts";
import { StoreReader } from "../src/reader/store-reader.ts";
import type { ObjectStore } from "../src/storage/object-store.ts";
import { BatchingStoreWriter } from "../src/writer/batching-writer.ts";
import { StoreWriter } from "../src/writer/store-writer.ts";
import { backends } from "./backends.ts";
import { readKey } from "./read-key.ts";

const NEVER = 3_600_000; // a flush interval no test waits for

const readAll = (store: ObjectStore, prefix: string, key = "k") =>
  readKey(new StoreReader({ store, prefix }), { key, maxSize: 100 });

async function dataObjects(store: ObjectStore, prefix: string, key = "k"): Promise<string[]> {
  const layout = new KeyspaceLayout(prefix, "ks").key(key);
  const listed = await store.list(layout.dataPrefix);
  return listed.objects.map((o) => o.key);
}

const text = (items: readonly Item[]) => items.map((i) => Buffer.from(i.value).toString());
const values = (...v: string[]) => v.map((s) => ({ value: Buffer.from(s) }));

for (const backend of backends()) {
  describe(`batching writer (${backend.name})`, () => {
    async function withWriter(
      batching: Partial<BatchingConfig>,
      body: (w: BatchingStoreWriter, store: ObjectStore, prefix: string) => Promise<void>,
    ): Promise<void> {
      const { store, prefix, cleanup } = await backend.open();
      const writer = new BatchingStoreWriter({ store, prefix, batching: { writerThreadCount: 0, ...batching } });
      try {
        await writer.createKeyspace("ks");
        await body(writer, store, prefix);
      } finally {
        await writer.close().catch(() => {});
        await cleanup();
      }
    }

    it("commits concurrent appends to one key as one object, outcomes in call order", () =>
      withWriter({ batchFlushIntervalMillis: NEVER, batchFlushItemCountThreshold: 40 }, async (w, store, prefix) => {
        const calls = Array.from({ length: 20 }, (_, i) => w.appendList("ks", "k", values(`a${i}`, `b${i}`)));
        const outcomes = await Promise.all(calls);
        assert.deepEqual(
          outcomes.map((o) => o.map((x) => (x.kind === "appended" ? x.offset : -1n))),
          Array.from({ length: 20 }, (_, i) => [BigInt(2 * i), BigInt(2 * i + 1)]),
        );
        assert.equal((await dataObjects(store, prefix)).length, 1, "one PUT for the whole group");
        assert.deepEqual(
          text(await readAll(store, prefix)),
          Array.from({ length: 20 }, (_, i) => [`a${i}`, `b${i}`]).flat(),
        );
        assert.deepEqual(w.queued, { items: 0, bytes: 0 });
      }));

    it("drops duplicate nonces within a group and against what is stored", () =>
      withWriter({ batchFlushIntervalMillis: NEVER }, async (w, store, prefix) => {
        const stored = w.appendList("ks", "k", [{ value: Buffer.from("x"), nonce: 5n }]);
        await w.flushAll();
        await stored;
        const pending = [
          w.appendList("ks", "k", [{ value: Buffer.from("dup-stored"), nonce: 5n }]),
          w.appendList("ks", "k", [{ value: Buffer.from("y"), nonce: 7n }]),
          w.appendList("ks", "k", [{ value: Buffer.from("dup-in-group"), nonce: 6n }]),
        ];
        await w.flushKey("ks", "k");
        const [a, b, c] = await Promise.all(pending);
        assert.deepEqual(a, [{ kind: "duplicate" }]);
        assert.equal(b?.[0]?.kind, "appended");
        assert.deepEqual(c, [{ kind: "duplicate" }]);
        assert.deepEqual(text(await readAll(store, prefix)), ["x", "y"]);
      }));

    it("flushes on the interval without being asked", () =>
      withWriter({ batchFlushIntervalMillis: 30, batchCheckIntervalMillis: 10 }, async (w, store, prefix) => {
        const [outcome] = await w.appendList("ks", "k", values("late"));
        assert.equal(outcome?.kind, "appended");
        assert.deepEqual(text(await readAll(store, prefix)), ["late"]);
      }));

    it("flushes when the size threshold is reached, and not before", () =>
      withWriter({ batchFlushIntervalMillis: NEVER, batchFlushSizeThreshold: 10 }, async (w, store, prefix) => {
        const first = w.appendList("ks", "k", values("12345"));
        await sleep(50);
        assert.equal((await dataObjects(store, prefix)).length, 0, "5 of 10 bytes: still pending");
        const second = w.appendList("ks", "k", values("67890"));
        await Promise.all([first, second]);
        assert.equal((await dataObjects(store, prefix)).length, 1);
      }));

    it("keeps per-key order across groups while other keys run", () =>
      withWriter({ batchFlushIntervalMillis: 0 }, async (w, store, prefix) => {
        const sent: Record<string, string[]> = { k: [], j: [] };
        const calls: Promise<unknown>[] = [];
        for (let i = 0; i < 60; i++) {
          const key = i % 3 === 0 ? "j" : "k";
          sent[key]?.push(`v${i}`);
          calls.push(w.appendList("ks", key, values(`v${i}`)));
          if (i % 7 === 0) await sleep(1); // let some groups commit while others form
        }
        await Promise.all(calls);
        assert.deepEqual(text(await readAll(store, prefix, "k")), sent.k);
        assert.deepEqual(text(await readAll(store, prefix, "j")), sent.j);
        assert.ok((await dataObjects(store, prefix, "k")).length < 40, "calls were grouped");
      }));

    it("runs at most max_concurrent_commits commits; a key waiting for one gathers its calls into one object", () =>
      withWriter({ batchFlushIntervalMillis: 0, maxConcurrentCommits: 2 }, async (w, store, prefix) => {
        const commit = w.writer.commitValidated.bind(w.writer);
        const release = Promise.withResolvers<void>();
        let running = 0;
        let most = 0;
        // A commit holds its slot until its key is free (stored, change queued for the log).
        w.writer.commitValidated = async (keyspace, key, insertions, options) => {
          running++;
          most = Math.max(most, running);
          let holding = true;
          const leave = () => {
            if (holding) running--;
            holding = false;
          };
          try {
            await release.promise;
            return await commit(keyspace, key, insertions, {
              ...options,
              onKeyFree: () => {
                leave();
                options?.onKeyFree?.();
              },
            });
          } finally {
            leave();
          }
        };
        const calls = [w.appendList("ks", "a", values("a1")), w.appendList("ks", "b", values("b1"))];
        await sleep(20);
        // Both slots are taken: c's calls wait, and keep joining one group while they do.
        calls.push(...["c1", "c2", "c3"].map((v) => w.appendList("ks", "c", values(v))));
        calls.push(w.appendList("ks", "d", values("d1")));
        await sleep(20);
        assert.equal(running, 2, "two commits hold the two slots");
        release.resolve();
        await Promise.all(calls);
        assert.equal(most, 2);
        assert.deepEqual(text(await readAll(store, prefix, "c")), ["c1", "c2", "c3"]);
        assert.equal((await dataObjects(store, prefix, "c")).length, 1, "c's three calls in one object");
        assert.deepEqual(text(await readAll(store, prefix, "d")), ["d1"]);
      }));

    it("starts a key's next group while the previous one's change is still being logged", () =>
      withWriter({ batchFlushIntervalMillis: 0 }, async (w, store, prefix) => {
        const put = store.put.bind(store);
        const logged = Promise.withResolvers<void>();
        let changePuts = 0;
        store.put = async (key, body, options) => {
          if (key.includes("/.changes/")) {
            changePuts++;
            await logged.promise;
          }
          return put(key, body, options);
        };
        const settled: string[] = [];
        const first = w.appendList("ks", "k", values("v0")).then((o) => settled.push("v0") && o);
        while (changePuts === 0) await sleep(5);
        // The first group is stored and its change PUT held: the next group commits anyway.
        const second = w.appendList("ks", "k", values("v1")).then((o) => settled.push("v1") && o);
        while ((await dataObjects(store, prefix)).length < 2) await sleep(5);
        let flushed = false;
        const flush = w.flushKey("ks", "k").then(() => (flushed = true));
        await sleep(30);
        assert.deepEqual(settled, [], "callers wait for their changes to be logged");
        assert.equal(flushed, false, "a flush covers the change log too");
        logged.resolve();
        const outcomes = await Promise.all([first, second, flush]);
        assert.deepEqual(settled, ["v0", "v1"]);
        assert.deepEqual(
          outcomes.slice(0, 2).map((o) => (o as { offset?: bigint }[])[0]?.offset),
          [0n, 1n],
        );
        assert.deepEqual(text(await readAll(store, prefix)), ["v0", "v1"]);
        assert.deepEqual(w.queued, { items: 0, bytes: 0 });
      }));

    it("splits a group larger than batch_max_bytes between calls, into objects in order", () =>
      withWriter({ batchFlushIntervalMillis: NEVER, batchMaxBytes: 10 }, async (w, store, prefix) => {
        const sent = ["1234", "5678", "9abc", "a call of 17 bytes", "x"];
        const calls = sent.map((v) => w.appendList("ks", "k", values(v)));
        await w.flushAll();
        const offsets = (await Promise.all(calls)).map((o) => (o[0]?.kind === "appended" ? o[0].offset : -1n));
        assert.deepEqual(offsets, [0n, 1n, 2n, 3n, 4n]);
        // 4+4 fit 10 bytes; 4 more would not. A call larger than the bound is an object alone.
        assert.equal((await dataObjects(store, prefix)).length, 4);
        assert.deepEqual(text(await readAll(store, prefix)), sent);
        assert.deepEqual(w.queued, { items: 0, bytes: 0 });
      }));

    it("keeps the outcomes of a split group's committed objects when a later one fails", () =>
      withWriter({ batchFlushIntervalMillis: NEVER, batchMaxBytes: 4 }, async (w, store, prefix) => {
        const commit = w.writer.commitValidated.bind(w.writer);
        let commits = 0;
        w.writer.commitValidated = async (...args) => {
          if (++commits === 2) throw new Fenced("ks", "k", 1n);
          return commit(...args);
        };
        const calls = ["1234", "5678", "9abc"].map((v) => w.appendList("ks", "k", values(v)));
        await assert.rejects(w.flushAll(), Fenced);
        const [first, ...rest] = await Promise.allSettled(calls);
        assert.equal(first?.status, "fulfilled", "committed before the failure");
        for (const r of rest) assert.equal(r.status, "rejected", "not committed: told so");
        assert.deepEqual(text(await readAll(store, prefix)), ["1234"]);
        assert.deepEqual(w.queued, { items: 0, bytes: 0 });
      }));

    it("refuses appends past the queue bounds with RESOURCE_EXHAUSTED, and takes them after a flush", () =>
      withWriter(
        { batchFlushIntervalMillis: NEVER, writerThreadQueueCapacity: 10, writerQueueMaxBytes: 1000 },
        async (w, store, prefix) => {
          const accepted = w.appendList("ks", "k", values(..."0123456789"));
          await assert.rejects(w.appendList("ks", "k", values("one too many")), (err: unknown) => {
            assert.ok(err instanceof ResourceExhausted);
            assert.equal(err.code, "RESOURCE_EXHAUSTED");
            assert.equal(err.retryable, true);
            return true;
          });
          await assert.rejects(w.appendList("ks", "other", values("x")), ResourceExhausted, "the bound is global");
          await w.flushAll();
          await accepted;
          const fits = w.appendList("ks", "k", values("now fits"));
          await w.flushAll();
          await fits;
          const big = "x".repeat(600);
          const first = w.appendList("ks", "k", values(big));
          await assert.rejects(w.appendList("ks", "k", values(big)), ResourceExhausted, "byte bound");
          await w.flushAll();
          await first;
          assert.equal((await readAll(store, prefix)).length, 12);
        },
      ));

    it("fails every call of a group that was fenced, then recovers", () =>
      withWriter({ batchFlushIntervalMillis: NEVER }, async (w, store, prefix) => {
        const p1 = w.appendList("ks", "k", values("first"));
        await w.flushAll();
        await p1;
        // Another writer commits behind the batching writer's back: its cached tail is stale.
        await new StoreWriter({ store, prefix }).appendList("ks", "k", values("other"));
        const group = [w.appendList("ks", "k", values("a")), w.appendList("ks", "k", values("b"))];
        await assert.rejects(w.flushAll(), Fenced);
        for (const call of group) await assert.rejects(call, Fenced);
        const retry = w.appendList("ks", "k", values("a", "b"));
        await w.flushAll();
        await retry;
        assert.deepEqual(text(await readAll(store, prefix)), ["first", "other", "a", "b"]);
      }));

    it("rejects a missing keyspace alone (appends and flushes), and appends after close", () =>
      withWriter({ batchFlushIntervalMillis: NEVER }, async (w, store, prefix) => {
        await assert.rejects(w.appendList("nope", "k", values("x")), KeyspaceNotFound);
        await assert.rejects(w.flushKey("nope", "k"), KeyspaceNotFound);
        await w.flushKey("ks", "never-written");
        const pending = w.appendList("ks", "k", values("flushed by close"));
        await w.close();
        await pending;
        await assert.rejects(w.appendList("ks", "k", values("x")), ShuttingDown);
        assert.deepEqual(text(await readAll(store, prefix)), ["flushed by close"]);
      }));

    it("compacts on piscina worker threads, zstd included", async () => {
      const { store, prefix, cleanup } = await backend.open();
      const writer = new BatchingStoreWriter({
        store,
        prefix,
        config: { compactObjectsThreshold: 3 },
        batching: { writerThreadCount: 2, batchFlushIntervalMillis: 0 },
      });
      try {
        await writer.createKeyspace("ks", { compression: "zstd" });
        const sent: string[] = [];
        for (let round = 0; round < 10; round++) {
          const batch = Array.from({ length: 5 }, (_, i) => `r${round}-${i}-${"z".repeat(200)}`);
          sent.push(...batch);
          await Promise.all(batch.map((v) => writer.appendList("ks", "k", values(v))));
        }
        assert.equal(writer.writer.codec.threads, 2);
        // Batches are serialized inline (a copy); the merges, zstd included, ran on the threads.
        assert.ok(writer.writer.codec.completedTasks >= 5, `worker tasks: ${writer.writer.codec.completedTasks}`);
        const names = await dataObjects(store, prefix);
        assert.ok(
          names.some((n) => n.endsWith(".bin.zst")),
          `a compacted zstd object exists: ${names.join(", ")}`,
        );
        assert.deepEqual(text(await readAll(store, prefix)), sent);
      } finally {
        await writer.close();
        await cleanup();
      }
    });
  });
}
