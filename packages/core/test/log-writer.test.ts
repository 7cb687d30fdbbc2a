// The log writer (docs/log.md, build step 5): appends of many keys share one segment per
// flush; keys continue across restarts and takeovers; a stale instance stores nothing; an
// unknown outcome is told as such and settled before the lane goes on. What a key holds is
// read here from its slot's record ranges (readers do not read logs yet: step 6).
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Fenced, KeyspaceAlreadyExists, StorageUnavailable } from "../src/errors.ts";
import { KeyspaceLayout } from "../src/format/layout.ts";
import { LogLayout } from "../src/format/log-layout.ts";
import { decodeRecords } from "../src/format/records.ts";
import { findLogEnd } from "../src/log/log-lane.ts";
import { LogTail } from "../src/log/log-tail.ts";
import { LogWriter } from "../src/log/log-writer.ts";
import { rangesOf, readSlotRecord, slotOf } from "../src/log/slot-records.ts";
import { slotEntries } from "../src/log/takeover.ts";
import { StoreReader } from "../src/reader/store-reader.ts";
import { countingStore, type ObjectStore, StorageStats } from "../src/storage/object-store.ts";
import { StoreWriter } from "../src/writer/store-writer.ts";
import { backends } from "./backends.ts";

const clock = () => 1_700_000_000_000n;

/** Every item of a key in the logs, in offset order: `offset:value`. */
async function logItems(store: ObjectStore, prefix: string, keyspace: string, key: string): Promise<string[]> {
  const slot = slotOf(keyspace, key);
  const record = await readSlotRecord(store, prefix, slot);
  if (!record) return [];
  const found = (await slotEntries(store, prefix, slot, rangesOf(record))).filter(
    (e) => e.entry.keyspace === keyspace && e.entry.key === key,
  );
  const items: string[] = [];
  for (const f of found) {
    const segment = await store.get(new LogLayout(prefix, f.log).segmentKey(f.seq));
    assert.ok(segment, "an entry's segment exists");
    const start = f.bodyStart + f.entry.bodyOffset;
    const body = segment.body.subarray(start, start + f.entry.bodyBytes);
    for (const item of decodeRecords("entry", { ...f.entry.name, compression: "none" }, body)) {
      items.push(`${item.offset}:${Buffer.from(item.value)}`);
    }
  }
  return items;
}

const values = (...vs: string[]) => vs.map((v) => ({ value: Buffer.from(v) }));
const offsets = (outcomes: readonly { kind: string; offset?: bigint }[]) =>
  outcomes.map((o) => (o.kind === "appended" ? o.offset : "duplicate"));

for (const backend of backends()) {
  describe(`log writer (${backend.name})`, () => {
    it("commits the calls of many keys that arrive together in one segment PUT per lane", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const stats = new StorageStats();
        const writer = new LogWriter({
          store: countingStore(store, stats),
          prefix,
          name: "writer-0",
          log: { logLanes: 1 },
        });
        await writer.open();
        await writer.createKeyspace("ks");
        // Take the slots first (their one-time cost), then measure the appends alone.
        const keys = Array.from({ length: 40 }, (_, i) => `user/${i}`);
        await Promise.all(keys.map((k) => writer.appendList("ks", k, values("warm"))));
        const before = stats.putRequests;
        const outcomes = await Promise.all(keys.map((k) => writer.appendList("ks", k, values("a", "b"))));
        for (const o of outcomes) assert.deepEqual(offsets(o), [1n, 2n]);
        const segmentPuts = stats.putRequests - before;
        // The first call flushes alone (the lane was idle); the 39 others share the next PUT.
        assert.ok(segmentPuts <= 3, `${segmentPuts} PUTs for 40 keys' appends`);
        for (const k of keys.slice(0, 3))
          assert.deepEqual(await logItems(store, prefix, "ks", k), ["0:warm", "1:a", "2:b"]);
        await writer.close();
      } finally {
        await cleanup();
      }
    });

    it("keeps offsets dense and nonces exactly once across a restart of the writer", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const first = new LogWriter({ store, prefix, name: "writer-0", config: { clock } });
        await first.open();
        await first.createKeyspace("ks");
        assert.deepEqual(offsets(await first.appendList("ks", "k", [{ value: Buffer.from("a"), nonce: 1n }])), [0n]);
        assert.deepEqual(offsets(await first.appendList("ks", "k", values("b"))), [1n]);
        // A restarted instance (kill -9: nothing closed) fences the old one and goes on.
        const restarted = new LogWriter({ store, prefix, name: "writer-0", config: { clock } });
        await restarted.open();
        const again = await restarted.appendList("ks", "k", [
          { value: Buffer.from("a"), nonce: 1n },
          { value: Buffer.from("c"), nonce: 2n },
        ]);
        assert.deepEqual(offsets(again), ["duplicate", 2n]);
        // A call of duplicates only stores nothing: no segment is written for it.
        const lane = new LogLayout(prefix, { writer: "writer-0", lane: slotOf("ks", "k") % 2 });
        const end = await findLogEnd(store, lane, 0n);
        const dup = await restarted.appendList("ks", "k", [{ value: Buffer.from("c"), nonce: 2n }]);
        assert.deepEqual(offsets(dup), ["duplicate"]);
        assert.equal(await findLogEnd(store, lane, 0n), end);
        // The old instance's next append meets the restart fence: nothing of it is stored.
        await assert.rejects(first.appendList("ks", "k", values("stale")), Fenced);
        await assert.rejects(first.appendList("ks", "k", values("stale again")), Fenced);
        assert.deepEqual(await logItems(store, prefix, "ks", "k"), ["0:a", "1:b", "2:c"]);
        await restarted.close();
      } finally {
        await cleanup();
      }
    });

    it("two writers appending to one key take its slot from each other, and every acknowledged item is there once", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const writers = ["writer-a", "writer-b"].map(
          (name) => new LogWriter({ store, prefix, name, config: { clock } }),
        );
        for (const w of writers) await w.open();
        await writers[0]?.createKeyspace("ks");
        const acked: string[] = [];
        let fenced = 0;
        for (let i = 0; i < 12; i++) {
          const writer = writers[Math.floor(i / 2) % 2] as LogWriter;
          for (;;) {
            try {
              const [o] = await writer.appendList("ks", "k", values(`v${i}`));
              assert.equal(o?.kind, "appended");
              acked.push(`${o?.kind === "appended" && o.offset}:v${i}`);
              break;
            } catch (err) {
              // Its slot was taken by the other writer: nothing stored; the retry takes it back.
              if (!(err instanceof Fenced)) throw err;
              fenced++;
            }
          }
        }
        // Five hand-overs; each fenced the writer that lost the slot, which learnt it from its next
        // append (the last one never appends again).
        assert.equal(fenced, 4, "the writer that lost the slot was told, each time");
        assert.deepEqual(await logItems(store, prefix, "ks", "k"), acked);
        assert.deepEqual(
          acked.map((a) => a.split(":")[0]),
          acked.map((_, i) => String(i)),
        );
        for (const w of writers) await w.close();
      } finally {
        await cleanup();
      }
    });

    it("answers UNAVAILABLE for a segment whose write failed without an answer, and settles it before going on", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        let failNext = false;
        const flaky: ObjectStore = {
          description: store.description,
          get: (k) => store.get(k),
          list: (p, o) => store.list(p, o),
          listFolders: (p) => store.listFolders(p),
          delete: (k) => store.delete(k),
          close: async () => {},
          async put(key, body, options) {
            if (failNext && key.includes(".logs/")) {
              failNext = false;
              await store.put(key, body, options); // stored, and the answer lost
              throw new StorageUnavailable("lost answer");
            }
            return store.put(key, body, options);
          },
        };
        const writer = new LogWriter({ store: flaky, prefix, name: "writer-0", config: { clock } });
        await writer.open();
        await writer.createKeyspace("ks");
        await writer.appendList("ks", "k", [{ value: Buffer.from("a"), nonce: 0n }]);
        failNext = true;
        await assert.rejects(
          writer.appendList("ks", "k", [{ value: Buffer.from("b"), nonce: 1n }]),
          StorageUnavailable,
        );
        // The client resends with the same nonce: the writer learnt the segment was stored.
        const resent = await writer.appendList("ks", "k", [
          { value: Buffer.from("b"), nonce: 1n },
          { value: Buffer.from("c"), nonce: 2n },
        ]);
        assert.deepEqual(offsets(resent), ["duplicate", 2n]);
        assert.deepEqual(await logItems(store, prefix, "ks", "k"), ["0:a", "1:b", "2:c"]);
        await writer.close();
      } finally {
        await cleanup();
      }
    });

    it("reads no key folder for the new keys of a new slot in a keyspace created on the log, and lists where it must", async () => {
      const { store, prefix, cleanup } = await backend.open();
      const listed: string[] = [];
      const listing = new Proxy(store, {
        get(target, property) {
          if (property === "list") {
            return (p: string, o?: Parameters<ObjectStore["list"]>[1]) => {
              listed.push(p);
              return target.list(p, o);
            };
          }
          const value = Reflect.get(target, property);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      const keyFolderLists = (keyspace: string) => listed.filter((p) => p.startsWith(`${prefix}${keyspace}/`)).length;
      try {
        await new StoreWriter({ store, prefix }).createKeyspace("older");
        const writer = new LogWriter({ store: listing, prefix, name: "writer-0", config: { clock } });
        await writer.open();
        await assert.rejects(writer.createKeyspace("older"), KeyspaceAlreadyExists);
        await writer.createKeyspace("fresh");
        const keys = Array.from({ length: 20 }, (_, i) => `user/${i}`);
        await Promise.all(keys.map((k) => writer.appendList("fresh", k, values("a"))));
        await Promise.all(keys.map((k) => writer.appendList("older", k, values("a"))));
        assert.equal(keyFolderLists("fresh"), 0, "a new key of a new slot has no per-key objects to look for");
        assert.ok(keyFolderLists("older") >= keys.length, "an older keyspace's keys may have some: one LIST each");

        // Materialized, the index knows where each key's objects end; trimmed, the next round
        // (which continues the key's objects) asks again.
        await writer.materializeAll();
        await writer.trim("fresh", "user/0", 1n);
        listed.length = 0;
        const second = await Promise.all(keys.map((k) => writer.appendList("fresh", k, values("b"))));
        for (const o of second) assert.deepEqual(offsets(o), [1n]);
        await writer.materializeAll();
        const trimmedFolder = new KeyspaceLayout(prefix, "fresh").key("user/0").folder;
        const listedFresh = listed.filter((p) => p.startsWith(`${prefix}fresh/`));
        assert.ok(listedFresh.length >= 1, "the trimmed key's folder is listed again");
        assert.ok(
          listedFresh.every((p) => p.startsWith(trimmedFolder)),
          `only the trimmed key's: ${listedFresh.join(", ")}`,
        );
        await writer.close();

        // A restarted writer did not create the slots: it lists each key once, and goes on.
        listed.length = 0;
        const restarted = new LogWriter({ store: listing, prefix, name: "writer-0", config: { clock } });
        await restarted.open();
        const third = await Promise.all(keys.map((k) => restarted.appendList("fresh", k, values("c"))));
        for (const o of third) assert.deepEqual(offsets(o), [2n]);
        assert.ok(keyFolderLists("fresh") >= keys.length);
        await restarted.materializeAll();
        await restarted.close();
        const reader = new StoreReader({ store, prefix, logTail: new LogTail(store, prefix) });
        for (const k of keys) {
          const page = await reader.readPage("fresh", k, { maxSize: 10 });
          const expected = k === "user/0" ? ["1:b", "2:c"] : ["0:a", "1:b", "2:c"];
          assert.deepEqual(
            page.items.map((i) => `${i.offset}:${Buffer.from(i.value)}`),
            expected,
            k,
          );
        }
      } finally {
        await cleanup();
      }
    });

    it("creates the slots it is given that no writer has had, so that their first appends take nothing", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const other = new LogWriter({ store, prefix, name: "writer-1", config: { clock } });
        await other.open();
        await other.createKeyspace("ks");
        assert.deepEqual(offsets(await other.appendList("ks", "theirs", values("a"))), [0n]);
        const stats = new StorageStats();
        const writer = new LogWriter({
          store: countingStore(store, stats),
          prefix,
          name: "writer-0",
          config: { clock },
        });
        await writer.open();
        const mine = slotOf("ks", "mine");
        await writer.prepareNewSlots([mine, slotOf("ks", "theirs")]);
        const before = { list: stats.listRequests, put: stats.putRequests };
        assert.deepEqual(offsets(await writer.appendList("ks", "mine", values("a"))), [0n]);
        assert.equal(stats.listRequests - before.list, 0, "no slot record, key folder or log to list");
        assert.equal(stats.putRequests - before.put, 1, "the segment alone");
        // A slot that has a record is not taken ahead: its owner goes on undisturbed.
        assert.deepEqual(offsets(await other.appendList("ks", "theirs", values("b"))), [1n]);
        await writer.close();
        await other.close();
      } finally {
        await cleanup();
      }
    });
  });
}
