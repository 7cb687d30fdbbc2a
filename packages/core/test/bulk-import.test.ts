// The bulk import engine: rows grouped per key into objects through the writer's fencing,
// exactly once across a failed run and its rerun (the batch in doubt at the failure is found
// from its claim tag), beside a live writer of the same key, and key listing for export.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { BulkImporter } from "../src/bulk/bulk-import.ts";
import { decodeImportRecord, encodeMarker, ImportLayout } from "../src/bulk/import-record.ts";
import type { ImportRow } from "../src/bulk/key-batches.ts";
import { listKeys } from "../src/bulk/key-listing.ts";
import { Fenced, KeyspaceNotFound, StorageUnavailable } from "../src/errors.ts";
import { KeyspaceLayout } from "../src/format/layout.ts";
import { parseListing } from "../src/format/object-chain.ts";
import { type Item, RECORD_OVERHEAD_BYTES } from "../src/format/records.ts";
import { StoreReader } from "../src/reader/store-reader.ts";
import { type ObjectStore, PreconditionFailed } from "../src/storage/object-store.ts";
import { BatchingStoreWriter } from "../src/writer/batching-writer.ts";
import { readWatermark } from "../src/writer/key-state.ts";
import { StoreWriter } from "../src/writer/store-writer.ts";
import { backends } from "./backends.ts";
import { readKey } from "./read-key.ts";

interface Line {
  readonly key: string;
  readonly value: string;
  readonly nonce?: bigint;
  readonly timestamp?: bigint;
}

async function* rowsOf(lines: readonly Line[]): AsyncGenerator<ImportRow> {
  for (const [i, l] of lines.entries()) {
    yield {
      line: i + 1,
      key: l.key,
      insertion: { value: Buffer.from(l.value), nonce: l.nonce, timestamp: l.timestamp },
    };
  }
}

/** `count` lines over `keys` keys, interleaved, each value naming its key and line. */
function interleaved(count: number, keys: number, valueBytes = 40): Line[] {
  return Array.from({ length: count }, (_, i) => {
    const key = `k${i % keys}`;
    return { key, value: `${key}:${i + 1}:`.padEnd(valueBytes, "x") };
  });
}

const idOf = (name: string) => createHash("sha256").update(name).digest("hex");

const readAll = (store: ObjectStore, prefix: string, key: string) =>
  readKey(new StoreReader({ store, prefix }), { key, maxSize: 1000 });

/** Asserts each key holds exactly its lines' values, once each, in file order, at dense offsets. */
async function assertStoredOnce(store: ObjectStore, prefix: string, lines: readonly Line[]): Promise<void> {
  const expected = new Map<string, string[]>();
  for (const l of lines) expected.set(l.key, [...(expected.get(l.key) ?? []), l.value]);
  for (const [key, values] of expected) {
    const items = await readAll(store, prefix, key);
    assert.deepEqual(
      items.map((i) => Buffer.from(i.value).toString()),
      values,
      `key ${key}: every line once, in order`,
    );
    assert.deepEqual(
      items.map((i) => i.offset),
      items.map((_, i) => BigInt(i)),
      `key ${key}: dense offsets`,
    );
  }
}

/**
 * A store that fails once, at the n-th PUT that matches: `after` writes and then throws
 * (the answer was lost), `after-retried` writes and then reports what a retried request
 * would see: the object exists.
 */
function failingStore(
  store: ObjectStore,
  match: (key: string, body: Uint8Array) => boolean,
  n: number,
  mode: "after" | "after-retried",
): ObjectStore & { readonly failedKey: string | undefined } {
  let seen = 0;
  let failedKey: string | undefined;
  return {
    ...withPut(store, async (key, body, options) => {
      if (failedKey !== undefined || !match(key, body) || ++seen < n) return store.put(key, body, options);
      failedKey = key;
      await store.put(key, body, options);
      if (mode === "after") throw new StorageUnavailable(`injected failure after PUT ${key}`);
      throw new PreconditionFailed(key);
    }),
    get failedKey() {
      return failedKey;
    },
  };
}

/** The store with its PUTs going through `put`. */
function withPut(store: ObjectStore, put: ObjectStore["put"]): ObjectStore {
  return {
    description: store.description,
    get: (key) => store.get(key),
    put,
    delete: (keys) => store.delete(keys),
    list: (prefix, options) => store.list(prefix, options),
    listFolders: (prefix) => store.listFolders(prefix),
    close: () => store.close(),
  };
}

const isData = (key: string, body: Uint8Array) => key.includes("/data_") && body.byteLength > 0;
const isClaim = (key: string, _body: Uint8Array) => key.includes("/claim_o");
/** Small objects, so a few hundred lines make many batches per key. */
const SMALL = { batchBytes: 600, maxInFlightCommits: 4 };

/**
 * A first run whose 9th write matching `match` is stored but its answer lost: it fails with
 * that batch in doubt. Returns the key of the write in doubt.
 */
async function failedRun(
  store: ObjectStore,
  prefix: string,
  source: { id: string; name: string; bytes: number },
  lines: readonly Line[],
  match: (key: string, body: Uint8Array) => boolean = isData,
): Promise<string | undefined> {
  const faulty = failingStore(store, match, 9, "after");
  const first = new StoreWriter({ store: faulty, prefix });
  const job = await new BulkImporter(first, SMALL).open("ks", source);
  await assert.rejects(job.run(rowsOf(lines)), StorageUnavailable);
  await first.close();
  return faulty.failedKey;
}

for (const backend of backends()) {
  describe(`bulk import (${backend.name})`, () => {
    it("stores every row once per key in file order, keeping nonces and timestamps", async () => {
      const { store, prefix, cleanup } = await backend.open();
      const writer = new StoreWriter({ store, prefix });
      try {
        await writer.createKeyspace("ks");
        const lines: Line[] = [
          { key: "a", value: "a1", nonce: 10n, timestamp: 1_700_000_000_000n },
          { key: "b", value: "b1" },
          { key: "a", value: "a2", nonce: 11n, timestamp: 1_700_000_000_005n },
          { key: "a", value: "dup", nonce: 11n }, // below a's next nonce: dropped
          { key: "b", value: "" },
          ...interleaved(300, 3).map((l) => ({ ...l, key: `many-${l.key}` })),
        ];
        const job = await new BulkImporter(writer, SMALL).open("ks", { id: idOf("basic"), name: "basic", bytes: 0 });
        const stats = await job.run(rowsOf(lines));
        assert.equal(stats.lines, lines.length);
        assert.equal(stats.itemsAppended, lines.length - 1);
        assert.equal(stats.duplicates, 1);
        assert.equal(stats.keys, 5);
        assert.ok(stats.objects > 10, `many objects (${stats.objects}) from ${SMALL.batchBytes}-byte batches`);
        const a = await readAll(store, prefix, "a");
        assert.deepEqual(
          a.map((i) => [Buffer.from(i.value).toString(), i.offset, i.nonce, i.timestamp]),
          [
            ["a1", 0n, 10n, 1_700_000_000_000n],
            ["a2", 1n, 11n, 1_700_000_000_005n],
          ],
        );
        await assertStoredOnce(
          store,
          prefix,
          lines.filter((l) => l.value !== "dup"),
        );

        const again = await new BulkImporter(writer, SMALL).open("ks", { id: idOf("basic"), name: "basic", bytes: 0 });
        assert.ok(again.complete, "the record says the import is complete");
        assert.deepEqual(again.totals, { lines: lines.length, keys: 5 });
      } finally {
        await writer.close();
        await cleanup();
      }
    });

    it("a key's small remainder at the end joins its last batch, if that has not started", async () => {
      const { store, prefix, cleanup } = await backend.open();
      const writer = new StoreWriter({ store, prefix });
      try {
        await writer.createKeyspace("ks");
        // Ten 40-byte values fill a batch; one commit at a time, so the second waits.
        const config = { batchBytes: 10 * (40 + RECORD_OVERHEAD_BYTES), maxInFlightCommits: 1 };
        for (const [remainder, objects] of [
          [2, 2], // under half a batch: joins the queued second batch
          [6, 3], // half a batch or more: an object of its own
        ] as const) {
          const lines = interleaved(20 + remainder, 1).map((l) => ({ ...l, key: `r${remainder}` }));
          const job = await new BulkImporter(writer, config).open("ks", {
            id: idOf(`remainder-${remainder}`),
            name: "remainder",
            bytes: 0,
          });
          const stats = await job.run(rowsOf(lines));
          assert.equal(stats.itemsAppended, lines.length);
          assert.equal(stats.objects, objects, `${remainder} rows left over`);
          await assertStoredOnce(store, prefix, lines);
        }
      } finally {
        await writer.close();
        await cleanup();
      }
    });

    it("rewrites the import record at most once per interval, and once more to complete it", async () => {
      const { store, prefix, cleanup } = await backend.open();
      // Writes that record a key starting are due before its first claim, whatever the
      // interval; the interval bounds the others.
      let recordPuts = 0;
      let keysRecorded = 0;
      const counting = withPut(store, (key, body, options) => {
        if (key.endsWith(".json") && key.includes("/.imports/")) {
          const keys = decodeImportRecord(key, body).keys.size;
          if (keys === keysRecorded) recordPuts++;
          keysRecorded = keys;
        }
        return store.put(key, body, options);
      });
      const writer = new StoreWriter({ store: counting, prefix });
      try {
        await writer.createKeyspace("ks");
        const lines = interleaved(300, 3);
        for (const [interval, most] of [
          [60_000, 1], // the completing one
          [0, Number.POSITIVE_INFINITY],
        ] as const) {
          recordPuts = 0;
          keysRecorded = 0;
          const job = await new BulkImporter(writer, { ...SMALL, minRecordIntervalMillis: interval }).open("ks", {
            id: idOf(`interval-${interval}`),
            name: "interval",
            bytes: 0,
          });
          const stats = await job.run(rowsOf(lines.map((l) => ({ ...l, key: `${l.key}-${interval}` }))));
          assert.ok(stats.objects > 10);
          assert.ok(recordPuts <= most, `${recordPuts} record writes with a ${interval} ms interval`);
          if (interval === 0) assert.ok(recordPuts > 1, `${recordPuts} record writes with no interval`);
        }
      } finally {
        await writer.close();
        await cleanup();
      }
    });

    it("gives a commit's slot back before its change reaches the change log, and ends after every change did", async () => {
      const { store, prefix, cleanup } = await backend.open();
      const isChange = (key: string) => key.includes("/.changes/");
      let changesStarted = 0;
      let changesDone = 0;
      let dataWhileChangeHeld = 0;
      let held: (() => void) | undefined;
      const gated = withPut(store, async (key, body, options) => {
        if (held && isData(key, body)) dataWhileChangeHeld++;
        if (!isChange(key)) return store.put(key, body, options);
        changesStarted++;
        if (changesStarted === 1) {
          // The first change's PUT waits until another commit stores its data (or 60 s pass).
          await new Promise<void>((resolve) => {
            const release = () => {
              clearTimeout(timer);
              held = undefined;
              resolve();
            };
            const timer = setTimeout(release, 60_000);
            held = release;
          });
        }
        await store.put(key, body, options);
        changesDone++;
      });
      const released = withPut(gated, async (key, body, options) => {
        await gated.put(key, body, options);
        if (held && isData(key, body)) held();
      });
      const writer = new StoreWriter({ store: released, prefix });
      try {
        await writer.createKeyspace("ks");
        const lines = interleaved(60, 3);
        const job = await new BulkImporter(writer, { ...SMALL, maxInFlightCommits: 1 }).open("ks", {
          id: idOf("slots"),
          name: "slots",
          bytes: 0,
        });
        const stats = await job.run(rowsOf(lines));
        assert.ok(stats.objects > 3, `${stats.objects} objects`);
        assert.ok(dataWhileChangeHeld > 0, "a batch was stored while the first change's PUT was held");
        assert.ok(changesStarted > 0);
        assert.equal(changesDone, changesStarted, "run() resolved after every change reached the log");
        await assertStoredOnce(store, prefix, lines);
      } finally {
        await writer.close();
        await cleanup();
      }
    });

    for (const [match, what] of [
      [isData, "a batch stored whose answer was lost"],
      [isClaim, "a batch claimed but never written"],
    ] as const) {
      it(`a rerun after a failed run stores each line once (${what})`, async () => {
        const { store, prefix, cleanup } = await backend.open();
        const lines = interleaved(400, 4);
        const source = { id: idOf(`rerun-${what}`), name: "rerun", bytes: 0 };
        try {
          await new StoreWriter({ store, prefix }).createKeyspace("ks");
          const inDoubt = await failedRun(store, prefix, source, lines, match);
          assert.ok(inDoubt && (await store.get(inDoubt)), "the write in doubt was stored");

          const second = new StoreWriter({ store, prefix });
          const rerun = await new BulkImporter(second, SMALL).open("ks", source);
          assert.equal(rerun.complete, false);
          const stats = await rerun.run(rowsOf(lines));
          await second.close();
          assert.ok(stats.alreadyImported > 0, "the rerun skipped what the first run stored");
          assert.equal(stats.itemsAppended + stats.alreadyImported, lines.length);
          await assertStoredOnce(store, prefix, lines);
        } finally {
          await cleanup();
        }
      });
    }

    it("records each key before its first claim, keys starting together sharing writes", async () => {
      const { store, prefix, cleanup } = await backend.open();
      const layout = new ImportLayout(new KeyspaceLayout(prefix, "ks"), idOf("starts"));
      let recorded = new Set<string>();
      let recordWrites = 0;
      const claimedUnrecorded: string[] = [];
      const watching = withPut(store, async (key, body, options) => {
        if (key.includes("/claim_o")) {
          const owner = key.split("/").at(-2) as string;
          if (!recorded.has(owner)) claimedUnrecorded.push(owner);
        }
        await store.put(key, body, options);
        if (key === layout.recordKey) {
          recordWrites++;
          recorded = new Set(decodeImportRecord(key, body).keys.keys());
        }
      });
      const writer = new StoreWriter({ store: watching, prefix });
      try {
        await writer.createKeyspace("ks");
        // Forty keys, each filling its first batch on the same few lines, all committing at once.
        const lines = interleaved(800, 40);
        const job = await new BulkImporter(writer, { ...SMALL, maxInFlightCommits: 40 }).open("ks", {
          id: idOf("starts"),
          name: "starts",
          bytes: 0,
        });
        await job.run(rowsOf(lines));
        assert.deepEqual(claimedUnrecorded, [], "no key was claimed before a stored record named it");
        assert.equal(recorded.size, 40);
        assert.ok(recordWrites < 10, `${recordWrites} record writes for 40 keys starting at once`);
        assert.deepEqual((await store.list(layout.markerFolder)).objects, [], "no per-key markers");
        await assertStoredOnce(store, prefix, lines);
      } finally {
        await writer.close();
        await cleanup();
      }
    });

    it("a rerun finds the batches of a failed run that marked its keys as earlier versions did", async () => {
      const { store, prefix, cleanup } = await backend.open();
      const lines = interleaved(400, 4);
      const source = { id: idOf("legacy"), name: "legacy", bytes: 0 };
      const layout = new ImportLayout(new KeyspaceLayout(prefix, "ks"), source.id);
      try {
        await new StoreWriter({ store, prefix }).createKeyspace("ks");
        await failedRun(store, prefix, source, lines);
        // What such a run leaves: no record yet (it was due a second later), a marker per key.
        await store.delete([layout.recordKey]);
        for (const key of ["k0", "k1", "k2", "k3"]) await store.put(layout.markerKey(key), encodeMarker(key, 0n));

        const second = new StoreWriter({ store, prefix });
        const stats = await (await new BulkImporter(second, SMALL).open("ks", source)).run(rowsOf(lines));
        await second.close();
        assert.ok(stats.alreadyImported > 0, "the rerun skipped what the first run stored");
        await assertStoredOnce(store, prefix, lines);
      } finally {
        await cleanup();
      }
    });

    it("a trim between a failed run and its rerun: nothing stored twice, nothing trimmed comes back", async () => {
      const { store, prefix, cleanup } = await backend.open();
      const lines = interleaved(400, 4);
      const source = { id: idOf("trim-between"), name: "trim-between", bytes: 0 };
      try {
        await new StoreWriter({ store, prefix }).createKeyspace("ks");
        await failedRun(store, prefix, source, lines);

        // k0 loses its first half, k1 everything the failed run stored (claims go with them).
        const trimmer = new StoreWriter({ store, prefix });
        const stored = { k0: await trimmer.nextOffset("ks", "k0"), k1: await trimmer.nextOffset("ks", "k1") };
        assert.ok(stored.k0 > 1n && stored.k1 > 0n, `the failed run stored batches: ${stored.k0}, ${stored.k1}`);
        const trimPoint = { k0: stored.k0 / 2n, k1: stored.k1 };
        await trimmer.trim("ks", "k0", trimPoint.k0);
        await trimmer.trim("ks", "k1", trimPoint.k1);
        await trimmer.close();

        const second = new StoreWriter({ store, prefix });
        const stats = await (await new BulkImporter(second, SMALL).open("ks", source)).run(rowsOf(lines));
        await second.close();
        assert.equal(stats.itemsAppended + stats.alreadyImported, lines.length);
        for (const key of ["k0", "k1", "k2", "k3"]) {
          const from = trimPoint[key as keyof typeof trimPoint] ?? 0n;
          const expected = lines.filter((l) => l.key === key).map((l) => l.value);
          const items = await readAll(store, prefix, key);
          assert.deepEqual(
            items.map((i) => Buffer.from(i.value).toString()),
            expected.slice(Number(from)),
            `key ${key}: the lines above the trim point, once each`,
          );
          assert.deepEqual(
            items.map((i) => i.offset),
            items.map((_, i) => from + BigInt(i)),
            `key ${key}: offsets from the trim point, dense`,
          );
        }
      } finally {
        await cleanup();
      }
    });

    it("a retried write that finds its own batch stored does not send it again", async () => {
      const { store, prefix, cleanup } = await backend.open();
      const lines = interleaved(300, 3);
      try {
        await new StoreWriter({ store, prefix }).createKeyspace("ks");
        // The 5th data write lands, but the writer is told the object exists: Fenced.
        const faulty = failingStore(store, isData, 5, "after-retried");
        const writer = new StoreWriter({ store: faulty, prefix });
        const job = await new BulkImporter(writer, SMALL).open("ks", { id: idOf("retried"), name: "r", bytes: 0 });
        const stats = await job.run(rowsOf(lines));
        await writer.close();
        assert.ok(faulty.failedKey, "the lost answer was injected");
        assert.equal(stats.itemsAppended, lines.length);
        await assertStoredOnce(store, prefix, lines);
      } finally {
        await cleanup();
      }
    });

    it("imports beside a live writer of the same key: both sides' items once, offsets dense", async () => {
      const { store, prefix, cleanup } = await backend.open();
      let lostClaims = 0;
      const counting: ObjectStore = {
        description: store.description,
        get: (key) => store.get(key),
        list: (p, o) => store.list(p, o),
        listFolders: (p) => store.listFolders(p),
        delete: (keys) => store.delete(keys),
        close: () => store.close(),
        async put(key, body, options) {
          try {
            await store.put(key, body, options);
          } catch (err) {
            if (err instanceof PreconditionFailed && isClaim(key, body)) lostClaims++;
            throw err;
          }
        },
      };
      const live = new BatchingStoreWriter({ store: counting, prefix, batching: { batchFlushIntervalMillis: 0 } });
      const writer = new StoreWriter({ store: counting, prefix });
      try {
        await writer.createKeyspace("ks");
        const lines = Array.from({ length: 400 }, (_, i) => ({ key: "shared", value: `import-${i}`.padEnd(60, "i") }));
        const liveValues = Array.from({ length: 60 }, (_, i) => `live-${i}`);
        let liveAcked = 0;
        let liveHalfway: () => void = () => {};
        const halfway = new Promise<void>((resolve) => {
          liveHalfway = resolve;
        });
        const appendLive = async () => {
          for (const value of liveValues) {
            for (;;) {
              try {
                await live.appendList("ks", "shared", [{ value: Buffer.from(value) }]);
                if (++liveAcked === liveValues.length / 2) liveHalfway();
                break;
              } catch (err) {
                if (!(err instanceof Fenced)) throw err; // nothing was stored: sending it again is safe
              }
            }
          }
        };
        // The import's second half waits for half the live items, so the two sides' commits
        // interleave and the importer's cached view of the key is stale at least once.
        async function* rows(): AsyncGenerator<ImportRow> {
          for await (const row of rowsOf(lines)) {
            if (row.line === lines.length / 2 + 1) await halfway;
            yield row;
          }
        }
        const job = await new BulkImporter(writer, { ...SMALL, maxFencedRetries: 100 }).open("ks", {
          id: idOf("live"),
          name: "live",
          bytes: 0,
        });
        const [stats] = await Promise.all([job.run(rows()), appendLive()]);
        assert.equal(stats.itemsAppended, lines.length);
        assert.ok(lostClaims > 0, "the two writers collided on a claim at least once");
        const items = await readAll(store, prefix, "shared");
        const values = items.map((i) => Buffer.from(i.value).toString());
        assert.deepEqual(
          values.filter((v) => v.startsWith("import-")),
          lines.map((l) => l.value),
          "imported lines once each, in file order",
        );
        assert.deepEqual(
          values.filter((v) => v.startsWith("live-")),
          liveValues,
          "live items once each, in order",
        );
        assert.deepEqual(
          items.map((i) => i.offset),
          items.map((_, i) => BigInt(i)),
        );
      } finally {
        await live.close();
        await writer.close();
        await cleanup();
      }
    });

    it("moves each key's watermark once per run, with its last batch, and rewrites no batch", async () => {
      const { store, prefix, cleanup } = await backend.open();
      const batchBytes = 10 * (40 + RECORD_OVERHEAD_BYTES);
      let watermarkPuts = 0;
      let deletes = 0;
      const counting: ObjectStore = {
        ...withPut(store, (key, body, options) => {
          if (key.endsWith("/watermark")) watermarkPuts++;
          return store.put(key, body, options);
        }),
        delete: (keys) => {
          deletes += keys.length;
          return store.delete(keys);
        },
      };
      // Batches as large as the writer's compaction threshold: each is complete on its own.
      const config = { compactSizeThreshold: batchBytes };
      const writer = new StoreWriter({ store: counting, prefix, config });
      try {
        await writer.createKeyspace("ks");
        // 52 lines a key: five full batches, and a remainder that ends the input.
        const lines = interleaved(104, 2);
        const job = await new BulkImporter(writer, { batchBytes, maxInFlightCommits: 2 }).open("ks", {
          id: idOf("watermarks"),
          name: "watermarks",
          bytes: 0,
        });
        const stats = await job.run(rowsOf(lines));
        assert.ok(stats.objects >= 10, `${stats.objects} objects`);
        assert.equal(watermarkPuts, 2, "one watermark write per key");
        assert.equal(deletes, 0, "no batch was merged into another");
        for (const key of ["k0", "k1"]) {
          const layout = new KeyspaceLayout(prefix, "ks").key(key);
          const objects = parseListing(layout, (await store.list(layout.dataPrefix)).objects);
          assert.ok(
            objects.every((o) => o.name.sizeBytes >= BigInt(batchBytes)),
            `${key}: every object is one batch`,
          );
          const newest = objects.at(-1)?.name.firstOffset;
          assert.equal(await readWatermark(store, layout), newest, `${key}: the watermark is at the newest object`);
        }
        await assertStoredOnce(store, prefix, lines);
      } finally {
        await writer.close();
        await cleanup();
      }
    });

    it("a watermark an import left behind moves past its batches with the key's next commit, merging none", async () => {
      const { store, prefix, cleanup } = await backend.open();
      const batchBytes = 10 * (40 + RECORD_OVERHEAD_BYTES);
      const config = { compactSizeThreshold: batchBytes };
      let batchesStored = 0;
      const counting = withPut(store, async (key, body, options) => {
        await store.put(key, body, options);
        if (isData(key, body)) batchesStored++;
      });
      const writer = new StoreWriter({ store: counting, prefix, config });
      try {
        await writer.createKeyspace("ks");
        // Exactly four full batches, and the input ends only once all four are stored: the
        // last one, too, was committed before the import knew it was the last.
        const lines = interleaved(40, 1);
        async function* rowsThenWait(): AsyncGenerator<ImportRow> {
          yield* rowsOf(lines);
          const deadline = Date.now() + 60_000;
          while (batchesStored < 4 && Date.now() < deadline) await sleep(5);
        }
        const job = await new BulkImporter(writer, { batchBytes, maxInFlightCommits: 1 }).open("ks", {
          id: idOf("held"),
          name: "held",
          bytes: 0,
        });
        assert.equal((await job.run(rowsThenWait())).objects, 4);
        const layout = new KeyspaceLayout(prefix, "ks").key("k0");
        assert.equal(await readWatermark(store, layout), undefined, "held by every batch");
        const batches = (await store.list(layout.dataPrefix)).objects.map((o) => o.key);

        // A live writer (its own state, read from storage) appends one small item.
        const live = new StoreWriter({ store, prefix, config });
        await live.appendList("ks", "k0", [{ value: Buffer.from("after") }]);
        await live.close();
        assert.equal(await readWatermark(store, layout), 30n, "moved to the last batch");
        const after = (await store.list(layout.dataPrefix)).objects.map((o) => o.key);
        assert.deepEqual(after.slice(0, 4), batches, "the batches are stored as they were");
        assert.equal(after.length, 5, "the small item is an object of its own, still uncompacted");
        await assertStoredOnce(store, prefix, [...lines, { key: "k0", value: "after" }]);
      } finally {
        await writer.close();
        await cleanup();
      }
    });

    it("refuses a missing keyspace before writing anything", async () => {
      const { store, prefix, cleanup } = await backend.open();
      const writer = new StoreWriter({ store, prefix });
      try {
        await assert.rejects(
          new BulkImporter(writer).open("nope", { id: idOf("x"), name: "x", bytes: 0 }),
          KeyspaceNotFound,
        );
      } finally {
        await writer.close();
        await cleanup();
      }
    });

    it("lists a keyspace's keys in byte order, leaving out the import folder", async () => {
      const { store, prefix, cleanup } = await backend.open();
      const writer = new StoreWriter({ store, prefix });
      try {
        await writer.createKeyspace("ks");
        const keys = ["b", "a b", "ü", "a", ".hidden", "Z", "a%"];
        const job = await new BulkImporter(writer).open("ks", { id: idOf("keys"), name: "keys", bytes: 0 });
        await job.run(rowsOf(keys.map((key) => ({ key, value: key }))));
        const recordKey = new ImportLayout(new KeyspaceLayout(prefix, "ks"), idOf("keys")).recordKey;
        assert.ok(await store.get(recordKey), "the import left its record");
        assert.deepEqual(
          await listKeys(store, prefix, "ks"),
          [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))),
        );
        await assert.rejects(listKeys(store, prefix, "nope"), KeyspaceNotFound);
      } finally {
        await writer.close();
        await cleanup();
      }
    });
  });
}
