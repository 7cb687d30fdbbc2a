// Trim and retention: items below the trim point are no longer served and the first
// available offset is exactly the trim point; whole objects below it are deleted; offsets
// are never reused and nonce dedup still holds (also after a restart, also when every item
// was trimmed); reads racing a trim never see a gap.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidArgument, Trimmed } from "../src/errors.ts";
import { KeyspaceLayout } from "../src/format/layout.ts";
import type { Item } from "../src/format/records.ts";
import type { IterationOrder } from "../src/index.ts";
import { StoreReader } from "../src/reader/store-reader.ts";
import type { ObjectStore } from "../src/storage/object-store.ts";
import { listAll } from "../src/writer/key-state.ts";
import { StoreWriter } from "../src/writer/store-writer.ts";
import { backends } from "./backends.ts";
import { readKey } from "./read-key.ts";

const CONFIG = { compactItemsThreshold: 30, compactObjectsThreshold: 4, compactSizeThreshold: 1 << 30 };

const readAll = (
  reader: StoreReader,
  order: IterationOrder = "forwards",
  maxSize = 7,
  served: Item[] = [],
  from?: string,
) => readKey(reader, { order, maxSize, into: served, continuation: from });

/** Appends `batches` batches of 10 items with nonces 1000 + offset and timestamps 10 * offset. */
async function fill(writer: StoreWriter, from: number, batches: number): Promise<void> {
  for (let b = 0; b < batches; b++) {
    const base = from + b * 10;
    await writer.appendList(
      "ks",
      "k",
      Array.from({ length: 10 }, (_, i) => ({
        value: Buffer.from(`v${base + i}`),
        nonce: BigInt(1000 + base + i),
        timestamp: BigInt(10 * (base + i)),
      })),
    );
  }
}

function offsets(items: readonly Item[]): number[] {
  return items.map((i) => Number(i.offset));
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

async function dataObjects(store: ObjectStore, prefix: string) {
  const layout = new KeyspaceLayout(prefix, "ks").key("k");
  return (await listAll(store, layout.dataPrefix, "")).map((o) => ({ ...o, name: layout.parseDataKey(o.key) }));
}

for (const backend of backends()) {
  describe(`trim (${backend.name})`, () => {
    it("serves exactly from the trim point, deletes whole objects below it, keeps offsets and nonces", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const writer = new StoreWriter({ store, prefix, config: CONFIG });
        await writer.createKeyspace("ks");
        await fill(writer, 0, 10); // offsets 0..99: compacted objects of 30 and smaller ones
        const result = await writer.trim("ks", "k", 35n);
        assert.equal(result.firstOffset, 35n);
        assert.ok(result.deletedObjects >= 2, `deleted ${result.deletedObjects}`);

        const reader = new StoreReader({ store, prefix });
        assert.deepEqual(offsets(await readAll(reader)), range(35, 100));
        assert.deepEqual(offsets(await readAll(reader, "backwards")), range(35, 100).reverse());
        const meta = await reader.readKeyMetadata("ks", "k");
        assert.equal(meta?.firstOffset, 35n);
        assert.equal(meta?.itemCount, 65n);
        assert.equal(meta?.minTimestamp, 350n, "the first available item's timestamp");
        const byTimestamp = await reader.readPage("ks", "k", { maxSize: 1, filter: { startTimestamp: 0n } });
        assert.equal(byTimestamp.items[0]?.offset, 35n, "a seek below the trim point lands on it");
        for (const o of await dataObjects(store, prefix)) {
          if (o.size > 0) assert.ok((o.name?.firstOffset ?? 0n) >= 35n, `${o.key} is below the trim point`);
        }

        // Nonce dedup holds, offsets are not reused: in this writer and in a fresh one.
        const again = await writer.appendList("ks", "k", [{ value: Buffer.from("dup"), nonce: 1005n }]);
        assert.deepEqual(again, [{ kind: "duplicate" }]);
        const fresh = new StoreWriter({ store, prefix, config: CONFIG });
        const [dup, next] = await fresh.appendList("ks", "k", [
          { value: Buffer.from("dup"), nonce: 1050n },
          { value: Buffer.from("new"), nonce: 2000n },
        ]);
        assert.deepEqual(dup, { kind: "duplicate" });
        assert.equal(next?.kind === "appended" && next.offset, 100n);
        assert.deepEqual(offsets(await readAll(reader)), range(35, 101));

        // Below the current start, nothing changes; beyond the next offset is refused.
        assert.equal((await fresh.trim("ks", "k", 10n)).firstOffset, 35n);
        await assert.rejects(fresh.trim("ks", "k", 102n), InvalidArgument);
        assert.deepEqual(offsets(await readAll(reader)), range(35, 101));
      } finally {
        await cleanup();
      }
    });

    it("a writer that cached the key before another's trim brings nothing trimmed back when it compacts", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const stale = new StoreWriter({ store, prefix, config: CONFIG });
        await stale.createKeyspace("ks");
        await fill(stale, 0, 2); // objects 0..9 and 10..19, both in the stale writer's cache
        const other = new StoreWriter({ store, prefix, config: CONFIG });
        assert.ok((await other.trim("ks", "k", 15n)).deletedObjects >= 1);
        // 30 items now count as uncompacted in the stale writer's view: it merges, and one
        // of its inputs is gone. It must give up that merge, not write the trimmed items back.
        await fill(stale, 20, 2);
        const reader = new StoreReader({ store, prefix });
        assert.deepEqual(offsets(await readAll(reader)), range(15, 40));
        assert.deepEqual(offsets(await readAll(reader, "backwards")), range(15, 40).reverse());
        assert.equal((await reader.readKeyMetadata("ks", "k"))?.firstOffset, 15n);
        for (const o of await dataObjects(store, prefix)) {
          if (o.size > 0) assert.ok((o.name?.firstOffset ?? 0n) >= 15n, `${o.key} holds trimmed items`);
        }
      } finally {
        await cleanup();
      }
    });

    it("trimming every item leaves an empty list that still knows its next offset and nonce", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const writer = new StoreWriter({ store, prefix, config: CONFIG });
        await writer.createKeyspace("ks", { compression: "zstd" });
        await fill(writer, 0, 5);
        assert.equal((await writer.trim("ks", "k", 50n)).firstOffset, 50n);
        const reader = new StoreReader({ store, prefix });
        assert.deepEqual(await readAll(reader), []);
        assert.deepEqual(await readAll(reader, "backwards"), []);
        assert.deepEqual(await reader.readKeyMetadata("ks", "k"), {
          firstOffset: 50n,
          nextOffset: 50n,
          nextNonce: 1050n,
          itemCount: 0n,
          minTimestamp: 490n,
          maxTimestamp: 490n,
        });
        assert.deepEqual(
          (await dataObjects(store, prefix)).filter((o) => o.size > 0),
          [],
        );
        const layout = new KeyspaceLayout(prefix, "ks").key("k");
        // Every claim stays: they fence writers whose cached state is older than the trim.
        const claims = await listAll(store, layout.claimPrefix, "");
        assert.equal(claims.length, 5, `claims left: ${claims.map((c) => c.key).join(", ")}`);

        const fresh = new StoreWriter({ store, prefix, config: CONFIG });
        const outcomes = await fresh.appendList("ks", "k", [
          { value: Buffer.from("old"), nonce: 1049n },
          { value: Buffer.from("new"), nonce: 1050n, timestamp: 1n },
        ]);
        assert.deepEqual(outcomes[0], { kind: "duplicate" });
        assert.deepEqual(outcomes[1], { kind: "appended", offset: 50n, timestamp: 490n });
        assert.deepEqual(offsets(await readAll(reader)), [50]);
        assert.equal((await reader.readKeyMetadata("ks", "k"))?.firstOffset, 50n);
      } finally {
        await cleanup();
      }
    });

    it("a trim inside a compressed object keeps the rest of it", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const writer = new StoreWriter({ store, prefix, config: CONFIG });
        await writer.createKeyspace("ks", { compression: "zstd" });
        await fill(writer, 0, 6);
        await writer.trim("ks", "k", 17n);
        const items = await readAll(new StoreReader({ store, prefix }));
        assert.deepEqual(offsets(items), range(17, 60));
        assert.deepEqual(
          items.map((i) => [i.nonce, i.timestamp, Buffer.from(i.value).toString()]),
          range(17, 60).map((o) => [BigInt(1000 + o), BigInt(10 * o), `v${o}`]),
        );
      } finally {
        await cleanup();
      }
    });

    it("a backward read continued across a trim ends at the trim point; a forward one is told it fell behind", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const writer = new StoreWriter({ store, prefix, config: CONFIG });
        await writer.createKeyspace("ks");
        await fill(writer, 0, 10);
        const reader = new StoreReader({ store, prefix });
        const back = await reader.readPage("ks", "k", { order: "backwards", maxSize: 30 });
        const fore = await reader.readPage("ks", "k", { maxSize: 30 });
        await writer.trim("ks", "k", 55n); // below the backward read, above the forward one
        const rest = await readAll(reader, "backwards", 7, [...back.items], back.continuation);
        assert.deepEqual(offsets(rest), range(55, 100).reverse());
        const served = [...fore.items];
        await assert.rejects(
          readAll(reader, "forwards", 7, served, fore.continuation),
          (err) => err instanceof Trimmed && err.resumeOffset === 30n && err.firstOffset === 55n,
        );
        assert.deepEqual(offsets(served), range(0, 30));
      } finally {
        await cleanup();
      }
    });

    it("reads racing trims are contiguous and never go below what they started above", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const writer = new StoreWriter({ store, prefix, config: { ...CONFIG, compactItemsThreshold: 20 } });
        await writer.createKeyspace("ks");
        await fill(writer, 0, 30); // 0..299
        const reader = new StoreReader({ store, prefix });
        const trims = (async () => {
          for (let point = 20n; point <= 280n; point += 20n) await writer.trim("ks", "k", point + 3n);
        })();
        const reads: { served: Item[]; trimmed: boolean }[] = [];
        for (let round = 0; round < 8; round++) {
          const served: Item[] = [];
          try {
            await readAll(reader, round % 2 === 0 ? "backwards" : "forwards", 5, served);
            reads.push({ served, trimmed: false });
          } catch (err) {
            // A forward read whose next items were trimmed is told so, never served a gap.
            assert.ok(err instanceof Trimmed, String(err));
            assert.equal(round % 2, 1, "only a forward read can fall behind a trim");
            reads.push({ served, trimmed: true });
          }
        }
        await trims;
        for (const [round, { served, trimmed }] of reads.entries()) {
          const got = offsets(served);
          if (got.length === 0) continue;
          const order = round % 2 === 0 ? -1 : 1;
          const expected = range(0, got.length).map((i) => (got[0] as number) + order * i);
          assert.deepEqual(got, expected, `read ${round} has no gap`);
          if (order === -1) assert.equal(got[0], 299, "a backward read starts at the end");
          else if (!trimmed) assert.equal(got.at(-1), 299, "a forward read reaches the end");
        }
        assert.deepEqual(offsets(await readAll(reader)), range(283, 300));
      } finally {
        await cleanup();
      }
    });
  });

  describe(`retention (${backend.name})`, () => {
    it("keeps the newest max_items items and the items younger than max_age", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        let now = 1000n;
        const writer = new StoreWriter({ store, prefix, config: { ...CONFIG, clock: () => now } });
        await writer.createKeyspace("ks", { retention: { maxItems: 45n } });
        await fill(writer, 0, 10); // timestamps 0..990
        assert.equal((await writer.applyRetention("ks", "k"))?.firstOffset, 55n);
        assert.equal(await writer.applyRetention("ks", "k"), undefined, "nothing more is due");

        await writer.setRetention("ks", { maxAgeMillis: 300n }); // keep timestamps >= now - 300
        now = 1000n;
        assert.equal((await writer.applyRetention("ks", "k"))?.firstOffset, 70n);
        const reader = new StoreReader({ store, prefix });
        assert.deepEqual(offsets(await readAll(reader)), range(70, 100));
        assert.deepEqual((await reader.readKeyspaceMetadata("ks")).retention, { maxAgeMillis: 300n });

        now = 5000n; // everything is older than max_age: the key empties, its end stays
        assert.equal((await writer.applyRetention("ks", "k"))?.firstOffset, 100n);
        assert.equal((await reader.readKeyMetadata("ks", "k"))?.nextOffset, 100n);
        await assert.rejects(writer.setRetention("ks", { maxItems: 0n }), InvalidArgument);
      } finally {
        await cleanup();
      }
    });
  });
}
