// Materialization and deletion of the shared log (docs/log.md): entries become per-key
// objects in the seed layout (readable without the log), a rerun writes the same objects,
// segments go once every slot in them is materialized, a new owner materializes what it took
// over and the old owner's segments then go too, and a read racing all that is still whole.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KeyspaceLayout } from "../src/format/layout.ts";
import { LogLayout } from "../src/format/log-layout.ts";
import { listSegments } from "../src/log/log-lane.ts";
import { LogTail } from "../src/log/log-tail.ts";
import { LogWriter } from "../src/log/log-writer.ts";
import { readSlotRecord, slotOf } from "../src/log/slot-records.ts";
import { StoreReader } from "../src/reader/store-reader.ts";
import type { ObjectStore } from "../src/storage/object-store.ts";
import { backends } from "./backends.ts";
import { readKey } from "./read-key.ts";

let now = 1_700_000_000_000n;
const clock = () => now;
/** Everything due at once: materialize and delete as soon as asked. */
const EAGER = { logRetentionMillis: 0, logDeleteDelayMillis: 0, materializeIntervalMillis: 0, logDutyCycleMillis: 0 };

const values = (...vs: string[]) => vs.map((v) => ({ value: Buffer.from(v) }));
const text = (items: { offset: bigint; value: Uint8Array }[]) =>
  items.map((i) => `${i.offset}:${Buffer.from(i.value)}`);

async function dataObjects(store: ObjectStore, prefix: string, key: string): Promise<string[]> {
  const layout = new KeyspaceLayout(prefix, "ks").key(key);
  return (await store.list(layout.dataPrefix)).objects.map((o) => o.key.slice(layout.folder.length));
}

async function segmentsOf(store: ObjectStore, prefix: string, writer: string, lane: number): Promise<bigint[]> {
  return (await listSegments(store, new LogLayout(prefix, { writer, lane }), 0n)).seqs;
}

for (const backend of backends()) {
  describe(`log materialization and deletion (${backend.name})`, () => {
    it("writes each key's entries as one per-key object a reader without the log reads whole", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const writer = new LogWriter({ store, prefix, name: "writer-0", config: { clock }, log: EAGER });
        await writer.open();
        await writer.createKeyspace("ks");
        for (let i = 0; i < 4; i++) {
          await Promise.all(["a", "b", "c"].map((k) => writer.appendList("ks", k, values(`${k}${i}`, `${k}${i}x`))));
        }
        await writer.materializeAll();
        const plain = new StoreReader({ store, prefix, config: { listPageSize: 2 } });
        for (const k of ["a", "b", "c"]) {
          const expected = [0, 1, 2, 3].flatMap((i) => [`${k}${i}`, `${k}${i}x`]).map((v, n) => `${n}:${v}`);
          assert.deepEqual(
            text(await readKey(plain, { key: k, maxSize: 3 })),
            expected,
            `${k} from per-key objects alone`,
          );
          const objects = await dataObjects(store, prefix, k);
          assert.equal(objects.length, 1, `${k}: one object per key per round`);
          assert.match(objects[0] as string, /^data_o00000000000000000000-o7_t\d+-t\d+_n0-n0_s340_p0\.bin$/);
          const withLog = new StoreReader({ store, prefix, logTail: new LogTail(store, prefix) });
          assert.deepEqual(text(await readKey(withLog, { key: k, order: "backwards" })), [...expected].reverse());
        }
        // A rerun (another instance of the writer, taking the slots over again) writes nothing new.
        const again = new LogWriter({ store, prefix, name: "writer-0", config: { clock }, log: EAGER });
        await again.open();
        await again.appendList("ks", "a", values("a-more"));
        await again.materializeAll();
        assert.deepEqual((await dataObjects(store, prefix, "a")).length, 2, "the old object and one for the new entry");
        assert.deepEqual((await dataObjects(store, prefix, "b")).length, 1);
        assert.deepEqual(text(await readKey(plain, { key: "a" })).at(-1), "8:a-more");
        await again.close();
      } finally {
        await cleanup();
      }
    });

    it("deletes the segments every slot in them is materialized past, keeping fences and the newest", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const log = { logLanes: 1, ...EAGER };
        const writer = new LogWriter({ store, prefix, name: "writer-0", config: { clock }, log });
        await writer.open();
        await writer.createKeyspace("ks");
        for (let i = 0; i < 5; i++) await writer.appendList("ks", `k${i % 2}`, values(`v${i}`));
        assert.deepEqual(await segmentsOf(store, prefix, "writer-0", 0), [0n, 1n, 2n, 3n, 4n, 5n]);
        // Not materialized yet: nothing may go.
        assert.equal(await writer.collectGarbage(), 0);
        await writer.materializeAll();
        // The round's progress went into a segment of its own (nothing else was pending): 6.
        assert.equal(await writer.collectGarbage(), 5);
        assert.deepEqual(await segmentsOf(store, prefix, "writer-0", 0), [0n, 6n], "the restart fence and the newest");
        const reader = new StoreReader({ store, prefix, logTail: new LogTail(store, prefix) });
        assert.deepEqual(text(await readKey(reader, { key: "k0" })), ["0:v0", "1:v2", "2:v4"]);
        // A restarted writer continues every key where it ends.
        const restarted = new LogWriter({ store, prefix, name: "writer-0", config: { clock }, log });
        await restarted.open();
        const [o] = await restarted.appendList("ks", "k1", values("v5"));
        assert.equal(o?.kind === "appended" && o.offset, 2n);
        assert.deepEqual(text(await readKey(reader, { key: "k1" })), ["0:v1", "1:v3", "2:v5"]);
        // Its segments written before it started are learnt from their indexes, and go too.
        await restarted.materializeAll();
        assert.ok((await restarted.collectGarbage()) >= 1);
        assert.deepEqual(
          await segmentsOf(store, prefix, "writer-0", 0),
          [0n, 7n, 9n],
          "two restart fences and the newest",
        );
        await restarted.close();
      } finally {
        await cleanup();
      }
    });

    it("keeps segments until their retention and delete delay have passed", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const log = { logLanes: 1, logRetentionMillis: 60_000, logDeleteDelayMillis: 10_000, logDutyCycleMillis: 0 };
        const writer = new LogWriter({ store, prefix, name: "writer-0", config: { clock }, log });
        await writer.open();
        await writer.createKeyspace("ks");
        for (let i = 0; i < 3; i++) await writer.appendList("ks", "k", values(`v${i}`));
        await writer.materializeAll();
        assert.equal(await writer.collectGarbage(), 0, "younger than the retention");
        now += 59_000n;
        assert.equal(await writer.collectGarbage(), 0, "still younger than the retention");
        now += 2_000n;
        assert.equal(
          await writer.collectGarbage(),
          3,
          "past the retention and the delay (the progress segment is the newest)",
        );
      } finally {
        await cleanup();
      }
    });

    it("a new owner materializes what it took over, and the old owner's segments then go", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const log = { logLanes: 1, ...EAGER };
        const a = new LogWriter({ store, prefix, name: "writer-a", config: { clock }, log });
        const b = new LogWriter({ store, prefix, name: "writer-b", config: { clock }, log });
        await a.open();
        await b.open();
        await a.createKeyspace("ks");
        await a.appendList("ks", "k", values("a0", "a1"));
        await b.appendList("ks", "k", values("b2"));
        const slot = slotOf("ks", "k");
        assert.equal((await readSlotRecord(store, prefix, slot))?.previous.length, 1, "b took the slot over from a");
        await b.materializeAll();
        const record = await readSlotRecord(store, prefix, slot);
        assert.equal(record?.owner.writer, "writer-b");
        assert.deepEqual(record?.previous, [], "a's range is materialized: the record lists it no more");
        const plain = new StoreReader({ store, prefix });
        assert.deepEqual(text(await readKey(plain)), ["0:a0", "1:a1", "2:b2"]);
        // a's segment with the slot's entries can go now (its fence by b stays).
        assert.ok((await a.collectGarbage()) >= 1);
        const left = await segmentsOf(store, prefix, "writer-a", 0);
        assert.deepEqual(left, [0n, 2n], "a's restart fence and b's takeover fence");
      } finally {
        await cleanup();
      }
    });

    it("a read racing materialization and segment deletion is whole: an entry gone is looked for again", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const writer = new LogWriter({
          store,
          prefix,
          name: "writer-0",
          config: { clock },
          log: { logLanes: 1, ...EAGER },
        });
        await writer.open();
        await writer.createKeyspace("ks");
        for (let i = 0; i < 6; i++) await writer.appendList("ks", "k", values(`v${i}`));
        // The reader lists the key (only log entries then), and is held before its first GET;
        // meanwhile everything is materialized and the segments deleted.
        let hold: Promise<void> | undefined;
        let release = () => {};
        const racing: ObjectStore = {
          ...store,
          description: store.description,
          list: (p, o) => store.list(p, o),
          listFolders: (p) => store.listFolders(p),
          put: (k, b, o) => store.put(k, b, o),
          delete: (k) => store.delete(k),
          close: async () => {},
          getRange: async (k, s, e) => {
            if (k.includes(".logs/") && s > 0 && !hold) {
              hold = new Promise((r) => (release = r));
              await hold;
            }
            return store.getRange ? store.getRange(k, s, e) : undefined;
          },
          get: (k) => store.get(k),
        };
        const reader = new StoreReader({ store: racing, prefix, logTail: new LogTail(racing, prefix) });
        const reading = readKey(reader, { maxSize: 10 });
        while (!hold) await new Promise((r) => setImmediate(r));
        await writer.materializeAll();
        assert.ok((await writer.collectGarbage()) >= 5);
        release();
        assert.deepEqual(text(await reading), ["0:v0", "1:v1", "2:v2", "3:v3", "4:v4", "5:v5"]);
      } finally {
        await cleanup();
      }
    });
  });
}

for (const backend of backends()) {
  describe(`trim and retention on the log (${backend.name})`, () => {
    it("trims keys whose items are log entries: nothing below the point is shown again, offsets and nonces go on", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const writer = new LogWriter({
          store,
          prefix,
          name: "writer-0",
          config: { clock },
          log: { logDutyCycleMillis: 0 },
        });
        await writer.open();
        await writer.createKeyspace("ks");
        for (let i = 0; i < 6; i++)
          await writer.appendList("ks", "k", [{ value: Buffer.from(`v${i}`), nonce: BigInt(i) }]);
        assert.equal((await writer.trim("ks", "k", 4n)).firstOffset, 4n);
        const viaLog = new StoreReader({ store, prefix, logTail: new LogTail(store, prefix) });
        const plain = new StoreReader({ store, prefix });
        for (const reader of [viaLog, plain]) assert.deepEqual(text(await readKey(reader)), ["4:v4", "5:v5"]);
        assert.deepEqual(text(await readKey(viaLog, { order: "backwards" })), ["5:v5", "4:v4"]);
        const more = await writer.appendList("ks", "k", [
          { value: Buffer.from("v5"), nonce: 5n },
          { value: Buffer.from("v6"), nonce: 6n },
        ]);
        assert.deepEqual(
          more.map((o) => (o.kind === "appended" ? o.offset : o.kind)),
          ["duplicate", 6n],
        );
        // Emptied, then appended to again: the list resumes at its next offset, nonces hold.
        assert.equal((await writer.trim("ks", "k", 7n)).firstOffset, 7n);
        assert.deepEqual(text(await readKey(viaLog)), []);
        const again = await writer.appendList("ks", "k", [
          { value: Buffer.from("v6"), nonce: 6n },
          { value: Buffer.from("v7"), nonce: 7n },
        ]);
        assert.deepEqual(
          again.map((o) => (o.kind === "appended" ? o.offset : o.kind)),
          ["duplicate", 7n],
        );
        assert.deepEqual(text(await readKey(viaLog)), ["7:v7"]);
        assert.deepEqual((await viaLog.readKeyMetadata("ks", "k"))?.firstOffset, 7n);
        await writer.close();
      } finally {
        await cleanup();
      }
    });

    it("applies a keyspace's retention to a key whose items are log entries", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const writer = new LogWriter({
          store,
          prefix,
          name: "writer-0",
          config: { clock },
          log: { logDutyCycleMillis: 0 },
        });
        await writer.open();
        await writer.createKeyspace("ks", { retention: { maxItems: 3n } });
        for (let i = 0; i < 8; i++) await writer.appendList("ks", "k", values(`v${i}`));
        assert.equal((await writer.applyRetention("ks", "k"))?.firstOffset, 5n);
        const viaLog = new StoreReader({ store, prefix, logTail: new LogTail(store, prefix) });
        assert.deepEqual(text(await readKey(viaLog)), ["5:v5", "6:v6", "7:v7"]);
        await writer.close();
      } finally {
        await cleanup();
      }
    });
  });
}
