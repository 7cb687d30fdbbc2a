// Storage requests per read, counted: a seek by offset, timestamp or nonce costs O(log n)
// LISTs in the number of objects; the tail (key metadata, first backward page) and a
// writer's recovery cost O(1) requests however long the key is. Counts, not timings, so
// the test is exact and fast; the filesystem counts the same requests S3 would get.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KeyspaceLayout } from "../src/format/layout.ts";
import { RecentObject, StoreReader } from "../src/reader/store-reader.ts";
import { countingStore, type ObjectStore, StorageStats } from "../src/storage/object-store.ts";
import { StoreWriter } from "../src/writer/store-writer.ts";
import { fileBackend } from "./backends.ts";

const LIST_PAGE = 4;

/** Appends objects [from, to) of 2 items each; item i has timestamp 1000 + 10 i and nonce 3 i. */
async function appendObjects(writer: StoreWriter, from: number, to: number): Promise<void> {
  for (let o = from; o < to; o++) {
    await writer.appendList(
      "ks",
      "k",
      [0, 1].map((j) => {
        const i = 2 * o + j;
        return { value: Buffer.from(`v${i}`), timestamp: BigInt(1000 + 10 * i), nonce: BigInt(3 * i) };
      }),
    );
  }
}

function counted(store: ObjectStore) {
  const stats = new StorageStats();
  const reader = new StoreReader({ store: countingStore(store, stats), config: { listPageSize: LIST_PAGE } });
  return { stats, reader };
}

describe("request costs", () => {
  it("seeks by offset, timestamp and nonce in O(log n) LISTs and reads only the object it lands in", async (t) => {
    const { store, prefix, cleanup } = await fileBackend.open();
    try {
      const sizes = [16, 64, 256];
      const worst: number[] = [];
      let built = 0;
      for (const objects of sizes) {
        // Grow the same key to the next size; without compaction every append stays its
        // own object, the worst case for a seek.
        const writer = new StoreWriter({ store, prefix, config: { compactObjectsThreshold: 1_000_000 } });
        if (built === 0) await writer.createKeyspace("ks");
        await appendObjects(writer, built, objects);
        built = objects;
        const reader = new StoreReader({ store, prefix, config: { listPageSize: LIST_PAGE } });
        let maxLists = 0;
        for (const target of [0, 1, Math.floor(objects / 3), Math.floor(objects / 2), objects - 2, objects - 1]) {
          const i = 2 * target + 1; // the second item of object `target`
          for (const [order, filter] of [
            ["forwards", { startOffset: BigInt(i) }],
            ["backwards", { startOffset: BigInt(i) }],
            ["forwards", { startTimestamp: BigInt(1000 + 10 * i) }],
            ["backwards", { startTimestamp: BigInt(1000 + 10 * i) }],
            ["forwards", { startNonce: BigInt(3 * i) }],
            ["backwards", { startNonce: BigInt(3 * i) }],
          ] as const) {
            const page = await reader.readPage("ks", "k", { order, filter, maxSize: 1 });
            assert.equal(page.items[0]?.offset, BigInt(i), `${order} ${JSON.stringify(filter, (_, v) => String(v))}`);
            // The watermark (to bound the search by the key's end) and the object landed in.
            assert.ok(page.stats.getRequests <= 2, `${page.stats.getRequests} GETs`);
            maxLists = Math.max(maxLists, page.stats.listRequests);
          }
        }
        worst.push(maxLists);
        t.diagnostic(`${objects} objects: at most ${maxLists} LISTs per seek`);
        // Binary search over n / LIST_PAGE windows, plus the first window, the LIST that
        // finds the key's end, one for the window the search ends in, and one that looks
        // up the object holding a probe.
        const bound = Math.ceil(Math.log2(objects / LIST_PAGE)) + 4;
        assert.ok(maxLists <= bound, `${objects} objects: ${maxLists} LISTs, bound ${bound}`);
      }
      // 16x the objects adds a handful of LISTs, it does not multiply them.
      assert.ok((worst[2] as number) - (worst[0] as number) <= 4, `LISTs by size: ${worst.join(", ")}`);
      assert.ok((worst[2] as number) < 256 / LIST_PAGE / 4, `far below a scan: ${worst.join(", ")}`);
    } finally {
      await cleanup();
    }
  });

  it("does not bisect the offsets inside a large object", async (t) => {
    const { store, prefix, cleanup } = await fileBackend.open();
    try {
      const never = { compactObjectsThreshold: 1e6, compactItemsThreshold: 1e6, compactSizeThreshold: 1e9 };
      const writer = new StoreWriter({ store, prefix, config: never });
      await writer.createKeyspace("ks");
      await appendObjects(writer, 0, 12); // offsets 0..23 in 12 objects
      const big = Array.from({ length: 60_000 }, (_, i) => ({
        value: Buffer.from(`b${i}`),
        timestamp: BigInt(100_000 + i),
        nonce: BigInt(100_000 + i),
      }));
      await writer.appendList("ks", "k", big); // offsets 24..60023 in one object
      await writer.appendList("ks", "k", [{ value: Buffer.from("after") }]);
      const reader = new StoreReader({ store, prefix, config: { listPageSize: 2 } });
      assert.equal((await store.list(new KeyspaceLayout(prefix, "ks").key("k").dataPrefix)).objects.length, 14);
      const lists: number[] = [];
      for (const i of [0n, 30_000n, 59_999n]) {
        for (const order of ["forwards", "backwards"] as const) {
          for (const filter of [{ startTimestamp: 100_000n + i }, { startNonce: 100_000n + i }]) {
            const page = await reader.readPage("ks", "k", { order, filter, maxSize: 1 });
            assert.equal(page.items[0]?.offset, 24n + i);
            lists.push(page.stats.listRequests);
          }
        }
      }
      // Bisecting offsets would spend log2(60000) ~ 16 probes inside the big object.
      assert.ok(Math.max(...lists) <= 8, `LISTs per seek: ${lists.join(", ")}`);
      t.diagnostic(`LISTs per seek into a 60000-item object among 14 objects: ${lists.join(", ")}`);
    } finally {
      await cleanup();
    }
  });

  it("recovers a key from one LIST of its folder, plus the watermark's GET once it has one", async () => {
    const { store, prefix, cleanup } = await fileBackend.open();
    try {
      /** GETs and LISTs of a fresh writer's first append to the key. */
      const recoveryCost = async (value: string, config: object = {}) => {
        const stats = new StorageStats();
        const writer = new StoreWriter({
          store: countingStore(store, stats),
          prefix,
          config: { changeLog: false, ...config },
        });
        await writer.keyspaceSettings("ks");
        const before = { get: stats.getRequests, list: stats.listRequests };
        const [outcome] = await writer.appendList("ks", "k", [{ value: Buffer.from(value) }]);
        assert.equal(outcome?.kind, "appended");
        return [stats.getRequests - before.get, stats.listRequests - before.list];
      };
      await new StoreWriter({ store, prefix }).createKeyspace("ks");
      assert.deepEqual(await recoveryCost("a"), [0, 1], "a new key: one LIST, which finds nothing");
      assert.deepEqual(await recoveryCost("b"), [0, 1], "a key of one object and one claim, no watermark");
      // One item completes an object: this append writes the key's watermark.
      await recoveryCost("c", { compactItemsThreshold: 1 });
      assert.deepEqual(await recoveryCost("d"), [1, 1], "a key with a watermark: its GET too");
      const reader = new StoreReader({ store, prefix });
      const page = await reader.readPage("ks", "k", { maxSize: 10 });
      assert.deepEqual(
        page.items.map((i) => [i.offset, Buffer.from(i.value).toString()]),
        [
          [0n, "a"],
          [1n, "b"],
          [2n, "c"],
          [3n, "d"],
        ],
      );
    } finally {
      await cleanup();
    }
  });

  it("merges the writer's own recent objects without reading them back (one LIST checks they are still there)", async () => {
    const { store, prefix, cleanup } = await fileBackend.open();
    try {
      const requests: number[][] = [];
      for (const compactionCacheBytes of [1 << 20, 0]) {
        const stats = new StorageStats();
        const config = { changeLog: false, compactObjectsThreshold: 4, compactionCacheBytes };
        const writer = new StoreWriter({ store: countingStore(store, stats), prefix, config });
        await writer.createKeyspace(`ks${compactionCacheBytes}`);
        await writer.appendList(`ks${compactionCacheBytes}`, "k", [{ value: Buffer.from("first") }]);
        const before = { get: stats.getRequests, list: stats.listRequests };
        // Three more objects: the fourth append merges all four.
        for (const v of ["a", "b", "c"])
          await writer.appendList(`ks${compactionCacheBytes}`, "k", [{ value: Buffer.from(v) }]);
        requests.push([stats.getRequests - before.get, stats.listRequests - before.list]);
        const reader = new StoreReader({ store, prefix });
        const items = await reader.readPage(`ks${compactionCacheBytes}`, "k", { maxSize: 10 });
        assert.deepEqual(
          items.items.map((i) => Buffer.from(i.value).toString()),
          ["first", "a", "b", "c"],
        );
      }
      assert.deepEqual(requests, [
        [0, 1], // kept bodies, and the LIST that finds the inputs still stored
        [4, 0], // a GET per input
      ]);
    } finally {
      await cleanup();
    }
  });

  it("fetches each object once, and LISTs once, when consecutive pages carry the recent object", async () => {
    const { store, prefix, cleanup } = await fileBackend.open();
    try {
      const writer = new StoreWriter({ store, prefix, config: { changeLog: false } });
      await writer.createKeyspace("ks");
      // Two objects of 40 items: pages of 7 end inside objects and one page spans both.
      for (let o = 0; o < 2; o++) {
        await writer.appendList(
          "ks",
          "k",
          Array.from({ length: 40 }, (_, j) => ({ value: Buffer.from(`v${40 * o + j}`) })),
        );
      }
      for (const order of ["forwards", "backwards"] as const) {
        const costs: Record<string, { gets: number; lists: number; offsets: bigint[] }> = {};
        for (const mode of ["alone", "carried", "dropped"] as const) {
          const { reader } = counted(store);
          const recent = mode === "alone" ? undefined : new RecentObject();
          const cost = { gets: 0, lists: 0, offsets: [] as bigint[] };
          let continuation: string | undefined;
          do {
            const page = await reader.readPage("ks", "k", { order, maxSize: 7, continuation, recent });
            cost.gets += page.stats.getRequests;
            cost.lists += page.stats.listRequests;
            cost.offsets.push(...page.items.map((i) => i.offset));
            continuation = page.continuation;
            // A stream whose client is behind lets go of the object between pages.
            if (mode === "dropped") recent?.dropObject();
          } while (continuation);
          costs[mode] = cost;
        }
        type Cost = { gets: number; lists: number; offsets: bigint[] };
        const { alone, carried, dropped } = costs as Record<"alone" | "carried" | "dropped", Cost>;
        assert.deepEqual(dropped.offsets, carried.offsets, `${order}: the same after dropping the object`);
        assert.equal(dropped.gets, alone.gets, `${order}: dropped, the object is fetched again for each page`);
        assert.equal(dropped.lists, carried.lists, `${order}: dropped, the listing still serves the next page`);
        const all = Array.from({ length: 80 }, (_, i) => BigInt(order === "forwards" ? i : 79 - i));
        assert.deepEqual(carried.offsets, all, `${order}: every item once, in order`);
        assert.deepEqual(alone.offsets, all, `${order}: the same without carrying`);
        // Backwards, the first page also GETs the (absent) watermark to find the newest object.
        const extra = order === "backwards" ? 1 : 0;
        assert.equal(carried.gets, 2 + extra, `${order}: one GET per object`);
        // 12 pages, one of them across both objects.
        assert.equal(alone.gets, 13 + extra, `${order}: without it, one GET per page and object read`);
        // The first page's listing serves the pages after it. Forwards, the page that reaches
        // its end LISTs once more, for objects committed since.
        assert.equal(carried.lists, order === "forwards" ? 2 : 1, `${order}: LISTs carrying the listing`);
        // (Backwards, the page across both objects LISTs again to step down to the older one.)
        assert.equal(alone.lists, order === "forwards" ? 12 : 13, `${order}: without it, a LIST per page`);
      }
    } finally {
      await cleanup();
    }
  });

  it("a stream's kept listing still sees objects committed and compacted after it was read", async () => {
    for (const compact of [false, true]) {
      const { store, prefix, cleanup } = await fileBackend.open();
      try {
        const plain = new StoreWriter({ store, prefix, config: { changeLog: false } });
        await plain.createKeyspace("ks");
        const batch = (first: number) =>
          Array.from({ length: 40 }, (_, j) => ({ value: Buffer.from(`v${first + j}`) }));
        for (let o = 0; o < 2; o++) await plain.appendList("ks", "k", batch(40 * o));
        const { reader } = counted(store);
        const recent = new RecentObject();
        const offsets: bigint[] = [];
        let page = await reader.readPage("ks", "k", { maxSize: 7, recent });
        offsets.push(...page.items.map((i) => i.offset));
        // After the first page listed two objects: three more, missing from the kept
        // listing; with compaction, merged with the first two, which are deleted, so the
        // kept listing names objects that are gone.
        const later = compact
          ? new StoreWriter({
              store,
              prefix,
              config: { changeLog: false, compactObjectsThreshold: 3, compactItemsThreshold: 1000 },
            })
          : plain;
        for (let o = 2; o < 5; o++) await later.appendList("ks", "k", batch(40 * o));
        const listed = await store.list(new KeyspaceLayout(prefix, "ks").key("k").dataPrefix, {});
        assert.equal(listed.objects.length < 5, compact, "the first objects were merged away, if compacting");
        while (page.continuation) {
          page = await reader.readPage("ks", "k", { maxSize: 7, continuation: page.continuation, recent });
          offsets.push(...page.items.map((i) => i.offset));
        }
        assert.deepEqual(
          offsets,
          Array.from({ length: 200 }, (_, i) => BigInt(i)),
          compact ? "compacted" : "appended",
        );
      } finally {
        await cleanup();
      }
    }
  });

  it("reads the tail in O(1) requests however long the key is", async (t) => {
    const costs: string[] = [];
    for (const objects of [20, 200]) {
      const { store, prefix, cleanup } = await fileBackend.open();
      try {
        const compacting = new StoreWriter({
          store,
          prefix,
          config: { compactObjectsThreshold: 4, compactItemsThreshold: 16 },
        });
        await compacting.createKeyspace("ks");
        await appendObjects(compacting, 0, objects);
        const { stats, reader } = counted(store);
        const meta = await reader.readKeyMetadata("ks", "k");
        assert.equal(meta?.nextOffset, BigInt(2 * objects));
        assert.equal(meta?.itemCount, BigInt(2 * objects));
        const metaCost = `${stats.getRequests} GET + ${stats.listRequests} LIST`;
        assert.ok(stats.getRequests <= 1 && stats.listRequests <= 2, `metadata: ${metaCost}`);

        const tail = await reader.readPage("ks", "k", { order: "backwards", maxSize: 1 });
        assert.equal(tail.items[0]?.offset, BigInt(2 * objects - 1));
        assert.ok(tail.stats.listRequests <= 1, `first backward page: ${tail.stats.listRequests} LISTs`);
        assert.ok(tail.stats.getRequests <= 2, `first backward page: ${tail.stats.getRequests} GETs`);

        const head = await reader.readPage("ks", "k", { maxSize: 1 });
        assert.equal(head.items[0]?.offset, 0n);
        assert.deepEqual([head.stats.listRequests, head.stats.getRequests], [1, 1], "first forward page");

        const next = await reader.readPage("ks", "k", { maxSize: 1, continuation: head.continuation });
        assert.equal(next.items[0]?.offset, 1n);
        assert.deepEqual([next.stats.listRequests, next.stats.getRequests], [1, 1], "next page");

        // A writer recovering the key on a cache miss: a LIST of its folder and the watermark's GET, then its 2 PUTs.
        const writerStats = new StorageStats();
        const writer = new StoreWriter({ store: countingStore(store, writerStats), prefix });
        await writer.appendList("ks", "k", [{ value: Buffer.from("x") }]);
        assert.ok(writerStats.getRequests <= 2 && writerStats.listRequests <= 2, "recovery is O(1)");
        costs.push(
          `${objects} objects: metadata ${metaCost}, recovery ${writerStats.getRequests} GET + ${writerStats.listRequests} LIST`,
        );
      } finally {
        await cleanup();
      }
    }
    t.diagnostic(costs.join("; "));
  });
});
