// Two writers of one key, and crashes between a claim and its data write.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Fenced } from "../src/errors.ts";
import { KeyspaceLayout } from "../src/format/layout.ts";
import type { Item } from "../src/format/records.ts";
import { StoreReader } from "../src/reader/store-reader.ts";
import type { ObjectStore } from "../src/storage/object-store.ts";
import { StoreWriter } from "../src/writer/store-writer.ts";
import { backends } from "./backends.ts";
import { readKey } from "./read-key.ts";

const readAll = (reader: StoreReader) => readKey(reader);

for (const backend of backends()) {
  describe(`fencing (${backend.name})`, () => {
    it("two writers appending to one key at once never commit overlapping offsets", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const config = { compactItemsThreshold: 25, compactObjectsThreshold: 4 };
        const a = new StoreWriter({ store, prefix, config });
        const b = new StoreWriter({ store, prefix, config });
        await a.createKeyspace("ks");
        const acked: string[] = [];
        let fenced = 0;
        const append = async (writer: StoreWriter, value: string) => {
          // Retry until committed: Fenced means nothing was stored, so retrying is safe.
          for (;;) {
            try {
              const [outcome] = await writer.appendList("ks", "k", [{ value: Buffer.from(value) }]);
              assert.equal(outcome?.kind, "appended");
              acked.push(value);
              return;
            } catch (err) {
              if (!(err instanceof Fenced)) throw err;
              fenced++;
            }
          }
        };
        // In turn first: after b commits, a's cached view of the key is stale, so a's next
        // commit must be fenced whatever the timing of the concurrent part below.
        await append(a, "a-0");
        await append(b, "b-0");
        await append(a, "a-1");
        assert.equal(fenced, 1, "a stale writer is fenced");
        const run = async (writer: StoreWriter, name: string, from: number) => {
          for (let i = from; i < 30; i++) await append(writer, `${name}-${i}`);
        };
        await Promise.all([run(a, "a", 2), run(b, "b", 1)]);
        const items = await readAll(new StoreReader({ store, prefix }));
        assert.deepEqual(
          items.map((i) => i.offset),
          items.map((_, i) => BigInt(i)),
          "offsets are dense and unique",
        );
        assert.deepEqual(items.map((i) => Buffer.from(i.value).toString()).sort(), [...acked].sort());
        assert.equal(items.length, 60);
        await a.close();
        await b.close();
      } finally {
        await cleanup();
      }
    });

    it("never takes a committed offset again when a recovery's LIST misses objects mid-compaction", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        // Compacting every 3 objects deletes the object batch 0 was first written to.
        const writer = new StoreWriter({ store, prefix, config: { compactObjectsThreshold: 3 } });
        await writer.createKeyspace("ks");
        for (let i = 0; i < 6; i++) await writer.appendList("ks", "k", [{ value: Buffer.from(`v${i}`) }]);
        // A LIST that overlaps a compaction (its inputs deleted, its output not listed yet)
        // can show none of the key's data objects. Two such LISTs in a row: the first
        // recovery round would seal batch 0's long-gone object, the second would take the
        // seal as a crashed writer's and hand offset 0 out again.
        const layout = new KeyspaceLayout(prefix, "ks").key("k");
        let misses = 2;
        const racing: ObjectStore = {
          description: store.description,
          get: (key) => store.get(key),
          put: (key, body, options) => store.put(key, body, options),
          delete: (keys) => store.delete(keys),
          // Both LISTs a recovery may make of the data: of the data objects, or of the whole folder.
          async list(listPrefix, options) {
            const page = await store.list(listPrefix, options);
            if (misses === 0 || (listPrefix !== layout.dataPrefix && listPrefix !== layout.folder)) return page;
            misses--;
            return { ...page, objects: page.objects.filter((o) => !o.key.startsWith(layout.dataPrefix)) };
          },
          listFolders: (p) => store.listFolders(p),
          close: () => store.close(),
        };
        const late = new StoreWriter({ store: racing, prefix, config: { compactObjectsThreshold: 3 } });
        const [outcome] = await late.appendList("ks", "k", [{ value: Buffer.from("late") }]);
        assert.equal(misses, 0, "both LISTs missed the objects");
        assert.equal(outcome?.kind === "appended" && outcome.offset, 6n);
        const items = await readAll(new StoreReader({ store, prefix }));
        assert.deepEqual(
          items.map((i) => Buffer.from(i.value).toString()),
          ["v0", "v1", "v2", "v3", "v4", "v5", "late"],
        );
      } finally {
        await cleanup();
      }
    });

    it("a claim left without its data object is sealed, and a late write by its owner fails", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const writer = new StoreWriter({ store, prefix });
        await writer.createKeyspace("ks");
        await writer.appendList("ks", "k", [{ value: Buffer.from("first") }]);
        // A writer that claimed offset 1 and then stalled (or died) before its data write.
        const layout = new KeyspaceLayout(prefix, "ks").key("k");
        const stalledDataKey = `${layout.folder}data_o00000000000000000001-o1_t5-t5_n0-n0_s46_p0.bin`;
        await store.put(
          layout.claimKey(1n, 0),
          Buffer.from(JSON.stringify({ dataKey: stalledDataKey, writer: "stalled" })),
          {
            ifNoneMatch: true,
          },
        );
        const recovering = new StoreWriter({ store, prefix });
        const [outcome] = await recovering.appendList("ks", "k", [{ value: Buffer.from("second") }]);
        assert.deepEqual(outcome && outcome.kind === "appended" ? outcome.offset : undefined, 1n);
        // The stalled writer wakes up: its data write must not land.
        await assert.rejects(store.put(stalledDataKey, Buffer.alloc(46), { ifNoneMatch: true }));
        const items = await readAll(new StoreReader({ store, prefix }));
        assert.deepEqual(
          items.map((i) => Buffer.from(i.value).toString()),
          ["first", "second"],
        );
        // The first writer's cached state is stale: it is fenced, then succeeds after re-reading.
        await assert.rejects(writer.appendList("ks", "k", [{ value: Buffer.from("third") }]), Fenced);
        const [third] = await writer.appendList("ks", "k", [{ value: Buffer.from("third") }]);
        assert.deepEqual(third && third.kind === "appended" ? third.offset : undefined, 2n);
        await writer.close();
        await recovering.close();
      } finally {
        await cleanup();
      }
    });
  });
}
