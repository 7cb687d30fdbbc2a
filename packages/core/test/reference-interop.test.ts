// klstore and the reference implementation (thill/klstore) on one bucket (docs/format.md,
// "Interoperability with the reference implementation"): keys the reference wrote with
// timestamps out of order, merged under names whose minimum exceeds their maximum, read
// and searched by timestamp; and keys klstore trimmed empty, continued by the reference's
// writer at their true next offset and nonce. The reference's side is its storage behaviour
// modelled from its source (reference-model.ts).
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KeyspaceLayout } from "../src/format/layout.ts";
import type { Item } from "../src/format/records.ts";
import { type IterationOrder, StoreReader } from "../src/reader/store-reader.ts";
import type { ObjectStore } from "../src/storage/object-store.ts";
import { listAll } from "../src/writer/key-state.ts";
import { StoreWriter } from "../src/writer/store-writer.ts";
import { backends } from "./backends.ts";
import { readKey } from "./read-key.ts";
import {
  type ReferenceInsertion,
  ReferenceWriter,
  referenceForwardOffsets,
  referenceKeyMetadata,
  referenceParse,
} from "./reference-model.ts";

const KEYSPACE_CONFIG = "[keyspace]\ncreated=1700000000000";
/** The reference's defaults but for the object count, so that a few appends merge. */
const MERGE_EVERY_3 = { items: 100_000, size: 1 << 20, objects: 3 };

async function referenceKeyspace(store: ObjectStore, prefix: string): Promise<void> {
  await store.put(new KeyspaceLayout(prefix, "ks").configKey, Buffer.from(KEYSPACE_CONFIG));
}

/** One append per timestamp list; item values name their timestamps, nonces count up from 1. */
async function appendEach(writer: ReferenceWriter, batches: readonly (readonly number[])[], key = "k"): Promise<void> {
  let nonce = 1n;
  for (const batch of batches) {
    const insertions: ReferenceInsertion[] = batch.map((ts) => ({
      value: `t${ts}`,
      timestamp: BigInt(ts),
      nonce: nonce++,
    }));
    await writer.append("ks", key, insertions);
  }
}

async function dataNames(store: ObjectStore, prefix: string) {
  const layout = new KeyspaceLayout(prefix, "ks").key("k");
  return (await listAll(store, layout.dataPrefix, "")).map((o) => ({ storedSize: o.size, ...referenceParse(o.key) }));
}

const stamps = (items: readonly Item[]) => items.map((i) => Number(i.timestamp));
const offsets = (items: readonly Item[]) => items.map((i) => Number(i.offset));

async function seek(reader: StoreReader, order: IterationOrder, startTimestamp: number, maxSize = 2) {
  return readKey(reader, { order, maxSize, filter: { startTimestamp: BigInt(startTimestamp) } });
}

for (const backend of backends()) {
  describe(`a key the reference wrote with timestamps out of order (${backend.name})`, () => {
    it("is read whole both ways, its merged object named min > max reported as no corruption", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        await referenceKeyspace(store, prefix);
        const ref = new ReferenceWriter(store, prefix, MERGE_EVERY_3);
        // Offsets 1-2 at 500 and 510, 3-4 back at 100 and 110, 5 at 50 (each append's own
        // range is its true min and max); the third append merges all three: t500-t50.
        await appendEach(ref, [[500, 510], [110, 100], [50], [120, 130]]);
        const names = await dataNames(store, prefix);
        assert.deepEqual(
          names.map((n) => [n.first, n.last, n.minTs, n.maxTs]),
          [
            [1n, 5n, 500n, 50n],
            [6n, 7n, 120n, 130n],
          ],
        );
        const reader = new StoreReader({ store, prefix });
        const forwards = await readKey(reader, { maxSize: 3 });
        assert.deepEqual(offsets(forwards), [1, 2, 3, 4, 5, 6, 7]);
        assert.deepEqual(stamps(forwards), [500, 510, 110, 100, 50, 120, 130]);
        const backwards = await readKey(reader, { order: "backwards", maxSize: 3 });
        assert.deepEqual(offsets(backwards), [7, 6, 5, 4, 3, 2, 1]);
        const meta = await reader.readKeyMetadata("ks", "k");
        assert.deepEqual([meta?.firstOffset, meta?.nextOffset, meta?.nextNonce], [1n, 8n, 8n]);

        // klstore's writer continues it at offset 8, its timestamp raised to the newest
        // object's maximum (130) as klstore keeps its own appends in order...
        const writer = new StoreWriter({ store, prefix });
        const [k8] = await writer.appendList("ks", "k", [{ value: Buffer.from("k8"), timestamp: 125n, nonce: 8n }]);
        assert.deepEqual(k8, { kind: "appended", offset: 8n, timestamp: 130n });
        assert.deepEqual(offsets(await readKey(reader)), [1, 2, 3, 4, 5, 6, 7, 8]);
        // ...or to the minimum of an out-of-order newest name (500, a timestamp it holds).
        await appendEach(ref, [[500, 510], [110, 100], [50]], "k2");
        const [k2] = await writer.appendList("ks", "k2", [{ value: Buffer.from("k6"), timestamp: 200n, nonce: 6n }]);
        assert.deepEqual(k2, { kind: "appended", offset: 6n, timestamp: 500n });
        await writer.close();
      } finally {
        await cleanup();
      }
    });

    it("is searched by timestamp as docs/format.md defines: an out-of-order name covers every timestamp", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        await referenceKeyspace(store, prefix);
        const ref = new ReferenceWriter(store, prefix, MERGE_EVERY_3);
        // Objects: [1..5] t500-t50 (items 500 510 110 100 50) and [6..7] t120-t130.
        await appendEach(ref, [[500, 510], [110, 100], [50], [120, 130]]);
        const reader = new StoreReader({ store, prefix });
        for (const [order, t, expected] of [
          // The first item >= T from the first object whose name reaches T: the merged one.
          ["forwards", 105, [1, 2, 3, 4, 5, 6, 7]],
          ["forwards", 505, [2, 3, 4, 5, 6, 7]],
          ["forwards", 135, [1, 2, 3, 4, 5, 6, 7]],
          // No item of the key reaches 600: nothing, though the merged name covers it.
          ["forwards", 600, []],
          // The last item <= T at or before the last object whose name reaches down to T.
          ["backwards", 125, [6, 5, 4, 3, 2, 1]],
          ["backwards", 140, [7, 6, 5, 4, 3, 2, 1]],
          ["backwards", 105, [5, 4, 3, 2, 1]],
          ["backwards", 10, []],
        ] as const) {
          assert.deepEqual(offsets(await seek(reader, order, t)), expected, `${order} from ${t}`);
        }
      } finally {
        await cleanup();
      }
    });

    it("is searched exactly when its names are out of order across LIST windows, where bisection would miss", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        await referenceKeyspace(store, prefix);
        // No merges: one object per append, each named by its own item's timestamp.
        const ref = new ReferenceWriter(store, prefix, { items: 100_000, size: 1 << 20, objects: 1000 });
        await appendEach(ref, [[5], [1], [20], [80], [30], [40], [10], [60]]);
        // Two names per LIST: the first window (t5, t1) is out of order, so the search scans
        // names. Bisection would find nothing forwards from 70 (the probe at offset 6 shows
        // t40 and t10, below it, and the one at 8 t60) and start backwards from 15 at offset
        // 2 (the probe at 6 begins above 15, which hides t10 at 7).
        const reader = new StoreReader({ store, prefix, config: { listPageSize: 2 } });
        assert.deepEqual(offsets(await seek(reader, "forwards", 70)), [4, 5, 6, 7, 8]);
        assert.deepEqual(offsets(await seek(reader, "forwards", 81)), []);
        assert.deepEqual(offsets(await seek(reader, "backwards", 15)), [7, 6, 5, 4, 3, 2, 1]);
        assert.deepEqual(offsets(await seek(reader, "backwards", 3)), [2, 1]);
      } finally {
        await cleanup();
      }
    });
  });

  describe(`a key klstore trims empty, then the reference's writer (${backend.name})`, () => {
    it("continues at the key's next offset and nonce, and its merges stay readable to klstore", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const writer = new StoreWriter({ store, prefix });
        await writer.createKeyspace("ks");
        for (let b = 0; b < 5; b++) {
          await writer.appendList(
            "ks",
            "k",
            Array.from({ length: 10 }, (_, i) => ({
              value: Buffer.from(`v${b * 10 + i}`),
              nonce: BigInt(1000 + b * 10 + i),
              timestamp: BigInt(10 * (b * 10 + i)),
            })),
          );
        }
        assert.equal((await writer.trim("ks", "k", 50n)).firstOffset, 50n);
        await writer.close();
        // What is left: the end marker, named from the watermark (1) to the last offset.
        const [marker, ...others] = await dataNames(store, prefix);
        assert.deepEqual(others, []);
        assert.deepEqual(
          marker && [marker.first, marker.last, marker.firstNonce, marker.nextNonce, marker.size, marker.prior],
          [1n, 49n, 1050n, 1050n, 0n, 1n],
        );
        assert.equal(marker?.storedSize, 0);
        assert.deepEqual(await referenceKeyMetadata(store, prefix, "ks", "k"), { nextOffset: 50n, nextNonce: 1050n });

        const ref = new ReferenceWriter(store, prefix, MERGE_EVERY_3);
        assert.deepEqual(await ref.recover("ks", "k").then((s) => [s.nextOffset, s.nextNonce]), [50n, 1050n]);
        await ref.append("ks", "k", [
          { value: "dup", timestamp: 1000n, nonce: 1049n }, // a duplicate of a trimmed item
          { value: "r50", timestamp: 1000n, nonce: 1050n },
        ]);
        await ref.append("ks", "k", [{ value: "r51", timestamp: 1001n, nonce: 1051n }]); // merges 50 and 51
        await ref.append("ks", "k", [{ value: "r52", timestamp: 1002n, nonce: 1052n }]);
        const names = await dataNames(store, prefix);
        assert.deepEqual(
          names.map((n) => [n.first, n.last]),
          [
            [1n, 49n],
            [50n, 51n],
            [52n, 52n],
          ],
          "the reference merged only what follows the marker",
        );

        const reader = new StoreReader({ store, prefix });
        const items = await readKey(reader, { maxSize: 2 });
        assert.deepEqual(
          items.map((i) => `${i.offset}:${Buffer.from(i.value).toString()}`),
          ["50:r50", "51:r51", "52:r52"],
        );
        assert.deepEqual(offsets(await readKey(reader, { order: "backwards", maxSize: 2 })), [52, 51, 50]);
        const meta = await reader.readKeyMetadata("ks", "k");
        assert.deepEqual([meta?.firstOffset, meta?.nextOffset, meta?.nextNonce], [50n, 53n, 1053n]);
        assert.deepEqual(await referenceForwardOffsets(store, prefix, "ks", "k"), [50n, 51n, 52n]);

        // klstore's writer follows on, and a later trim takes the marker away with the items
        // below its point, so that the reference's reader finds no gap after it.
        const again = new StoreWriter({ store, prefix });
        const [next] = await again.appendList("ks", "k", [{ value: Buffer.from("k53"), nonce: 1052n }]);
        assert.deepEqual(next, { kind: "duplicate" });
        const [k53] = await again.appendList("ks", "k", [{ value: Buffer.from("k53"), nonce: 1053n }]);
        assert.equal(k53?.kind === "appended" && k53.offset, 53n);
        await again.trim("ks", "k", 52n);
        await again.close();
        assert.deepEqual(
          (await dataNames(store, prefix)).map((n) => [n.first, n.last]),
          [
            [52n, 52n],
            [53n, 53n],
          ],
        );
        assert.deepEqual(await referenceForwardOffsets(store, prefix, "ks", "k"), [52n, 53n]);
        assert.deepEqual(offsets(await readKey(reader)), [52, 53]);
      } finally {
        await cleanup();
      }
    });

    it("continues a key it wrote itself (from offset 1) after klstore trimmed it empty", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        await referenceKeyspace(store, prefix);
        const ref = new ReferenceWriter(store, prefix, MERGE_EVERY_3);
        await appendEach(ref, [[10, 11], [12], [13], [14]]); // 1-4 merged, watermark 1 not moved
        const writer = new StoreWriter({ store, prefix });
        assert.equal((await writer.trim("ks", "k", 6n)).firstOffset, 6n);
        await writer.close();
        assert.deepEqual(await referenceKeyMetadata(store, prefix, "ks", "k"), { nextOffset: 6n, nextNonce: 6n });
        const later = new ReferenceWriter(store, prefix, MERGE_EVERY_3);
        await later.append("ks", "k", [{ value: "r6", timestamp: 20n, nonce: 5n }]); // a duplicate
        await later.append("ks", "k", [{ value: "r6", timestamp: 20n, nonce: 6n }]);
        const reader = new StoreReader({ store, prefix });
        assert.deepEqual(
          (await readKey(reader)).map((i) => [Number(i.offset), Buffer.from(i.value).toString()]),
          [[6, "r6"]],
        );
      } finally {
        await cleanup();
      }
    });

    it("of one item at offset 0 gets no marker: the reference starts at 1 (no offset reused) with nonce 0", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const writer = new StoreWriter({ store, prefix });
        await writer.createKeyspace("ks");
        await writer.appendList("ks", "k", [{ value: Buffer.from("v0"), nonce: 7n }]);
        await writer.trim("ks", "k", 1n);
        await writer.close();
        assert.deepEqual(await dataNames(store, prefix), []);
        // As docs/format.md says: the reference's reader fails on the key's metadata, and its
        // writer starts the key at 1 with nonce 0, so nonce 7 is taken again.
        await assert.rejects(referenceKeyMetadata(store, prefix, "ks", "k"), /is not pointing to any data/);
        const ref = new ReferenceWriter(store, prefix, MERGE_EVERY_3);
        assert.deepEqual(await ref.recover("ks", "k").then((s) => [s.nextOffset, s.nextNonce]), [1n, 0n]);
        await ref.append("ks", "k", [{ value: "again", timestamp: 5n, nonce: 7n }]);
        const reader = new StoreReader({ store, prefix });
        assert.deepEqual(offsets(await readKey(reader)), [1]);
      } finally {
        await cleanup();
      }
    });
  });
}
