// Races between writers, trims, compactions and recoveries of one key, each replayed at
// the moment that once lost or blocked an acknowledged item (docs/fencing.md, "Why it is
// safe"). Every interleaving is forced through a wrapped store, so each test is exact.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Fenced } from "../src/errors.ts";
import { encodeDataObject } from "../src/format/data-object.ts";
import { type KeyLayout, KeyspaceLayout } from "../src/format/layout.ts";
import type { Item } from "../src/format/records.ts";
import { StoreReader } from "../src/reader/store-reader.ts";
import { type ListedObject, type ObjectStore, PreconditionFailed } from "../src/storage/object-store.ts";
import { InlineCodecPool } from "../src/workers/codec-pool.ts";
import { compactKey } from "../src/writer/compaction.ts";
import { recoverKeyState } from "../src/writer/fencing.ts";
import { StoreWriter } from "../src/writer/store-writer.ts";
import { backends } from "./backends.ts";
import { readKey } from "./read-key.ts";

const v = (s: string) => ({ value: Buffer.from(s) });

function wrap(store: ObjectStore, over: Partial<ObjectStore>): ObjectStore {
  return {
    description: store.description,
    get: (k) => store.get(k),
    put: (k, b, o) => store.put(k, b, o),
    delete: (ks) => store.delete(ks),
    list: (p, o) => store.list(p, o),
    listFolders: (p) => store.listFolders(p),
    close: () => store.close(),
    ...over,
  };
}

/** A store whose data GETs (a compaction's reads) wait while held, to run a merge inside another operation. */
function heldReads(store: ObjectStore, layout: KeyLayout) {
  let gate: PromiseWithResolvers<void> | undefined;
  const held = wrap(store, {
    async get(k) {
      if (gate && k.startsWith(layout.dataPrefix)) await gate.promise;
      return store.get(k);
    },
  });
  return {
    store: held,
    hold: () => {
      gate = Promise.withResolvers<void>();
    },
    release: () => {
      gate?.resolve();
      gate = undefined;
    },
  };
}

/** A store that, once armed, runs `then` right after its `n`th data LIST returns. */
function pausingAfterDataList(store: ObjectStore, layout: KeyLayout) {
  let armed: { n: number; then: () => Promise<unknown> } | undefined;
  let lists = 0;
  const pausing = wrap(store, {
    async list(p, o) {
      const page = await store.list(p, o);
      if (armed && p === layout.dataPrefix && ++lists === armed.n) await armed.then();
      return page;
    },
  });
  return {
    store: pausing,
    arm: (n: number, then: () => Promise<unknown>) => {
      armed = { n, then };
      lists = 0;
    },
  };
}

/** Waits until a data object starting at `offset` is listed. */
async function untilListed(store: ObjectStore, layout: KeyLayout, offset: bigint): Promise<void> {
  const start = `${layout.startAfterForFirstOffset(offset)}-`;
  while (!(await store.list(layout.dataPrefix)).objects.some((o) => o.key.startsWith(start))) {
    await new Promise((done) => setTimeout(done, 5));
  }
}

const readAll = async (store: ObjectStore, prefix: string) =>
  (await readKey(new StoreReader({ store, prefix }))).map((i) => `${i.offset}:${Buffer.from(i.value).toString()}`);

for (const backend of backends()) {
  describe(`fencing races (${backend.name})`, () => {
    it("fences a writer any number of batches behind, even after a trim", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const a = new StoreWriter({ store, prefix, config: { changeLog: false } });
        await a.createKeyspace("ks");
        for (let i = 0; i < 3; i++) await a.appendList("ks", "k", [v(`a${i}`)]); // a believes next = 3
        const b = new StoreWriter({ store, prefix, config: { changeLog: false } }); // the key's new owner
        for (let i = 3; i < 6; i++) await b.appendList("ks", "k", [v(`b${i}`)]);
        await b.trim("ks", "k", 5n);
        // The old owner appends with its cached next offset, three batches old.
        await assert.rejects(a.appendList("ks", "k", [v("late")]), Fenced);
        const [retried] = await a.appendList("ks", "k", [v("late")]);
        assert.equal(retried?.kind === "appended" && retried.offset, 6n);
        assert.deepEqual(await readAll(store, prefix), ["5:b5", "6:late"]);
      } finally {
        await cleanup();
      }
    });

    it("keeps a trim's kept suffix when a recovery runs before the trim deletes the object it was cut from", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const layout = new KeyspaceLayout(prefix, "ks").key("k");
        const w = new StoreWriter({ store, prefix, config: { changeLog: false } });
        await w.createKeyspace("ks");
        await w.appendList("ks", "k", [v("i0"), v("i1"), v("i2"), v("i3")]);
        await w.appendList("ks", "k", [v("i4")]);
        const other = new StoreWriter({ store, prefix, config: { changeLog: false } });
        let raced = false;
        const trimming = wrap(store, {
          async delete(keys) {
            if (!raced && keys.some((k) => k.startsWith(layout.dataPrefix))) {
              raced = true;
              // Another process recovers the key between the trim's suffix and its deletes.
              await other.appendList("ks", "k", [v("r5")]);
            }
            return store.delete(keys);
          },
        });
        await new StoreWriter({ store: trimming, prefix, config: { changeLog: false } }).trim("ks", "k", 2n);
        assert.ok(raced);
        assert.deepEqual(await readAll(store, prefix), ["2:i2", "3:i3", "4:i4", "5:r5"]);
      } finally {
        await cleanup();
      }
    });

    it("never takes a committed offset again when a trim races another process's compaction", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const layout = new KeyspaceLayout(prefix, "ks").key("k");
        const config = { compactItemsThreshold: 5, compactObjectsThreshold: 2, changeLog: false };
        // The owner's compaction waits while held, so it runs inside the trim: it GETs its
        // inputs (no bodies kept in memory), and those GETs are held.
        const owner = heldReads(store, layout);
        const w = new StoreWriter({ store: owner.store, prefix, config: { ...config, compactionCacheBytes: 0 } });
        await w.createKeyspace("ks");
        await w.appendList("ks", "k", [v("z0"), v("z1"), v("z2"), v("z3"), v("z4")]); // complete
        await w.appendList("ks", "k", [v("a5"), v("a6")]);
        owner.hold();
        const committing = w.appendList("ks", "k", [v("b7"), v("b8")]); // merges 5-6 and 7-8 when released
        await untilListed(store, layout, 7n);
        const trimming = pausingAfterDataList(store, layout);
        // The trim has listed what lies below its point (its first data LIST, after its
        // recovery's LIST of the key's folder): the merge runs to the end now.
        let released = false;
        trimming.arm(1, () => {
          released = true;
          owner.release();
          return committing;
        });
        await new StoreWriter({ store: trimming.store, prefix, config }).trim("ks", "k", 7n);
        assert.ok(released, "the merge ran inside the trim");
        const [next] = await new StoreWriter({ store, prefix, config }).appendList("ks", "k", [v("new")]);
        assert.equal(next?.kind === "appended" && next.offset, 9n, "7 and 8 hold b7 and b8");
        const items = await readAll(store, prefix);
        assert.deepEqual(items.slice(-3), ["7:b7", "8:b8", "9:new"]);
      } finally {
        await cleanup();
      }
    });

    it("trusts another recovery's seal only after reading the key again", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const layout = new KeyspaceLayout(prefix, "ks").key("k");
        const config = { compactObjectsThreshold: 3, changeLog: false };
        const w = new StoreWriter({ store, prefix, config });
        await w.createKeyspace("ks");
        await w.appendList("ks", "k", [v("v0")]);
        await w.appendList("ks", "k", [v("v1")]);
        const inputs = (await store.list(layout.dataPrefix)).objects;
        await w.appendList("ks", "k", [v("v2")]); // commits 2, merges 0..2, deletes the inputs
        // What a LIST overlapping that compaction can show: the claims, the first two
        // inputs (passed before their delete), neither the third nor the merged object.
        const claims = (await store.list(layout.claimPrefix)).objects;
        const view: ListedObject[] = [...claims, ...inputs].sort((a, b) => (a.key < b.key ? -1 : 1));
        const missingOnce = () => {
          let missing = true;
          return wrap(store, {
            async list(p, o) {
              if (missing && p === layout.folder) {
                missing = false;
                return { objects: view, truncated: false };
              }
              return store.list(p, o);
            },
          });
        };
        const x = new StoreWriter({ store: missingOnce(), prefix, config });
        const y = new StoreWriter({ store: missingOnce(), prefix, config });
        const [ox] = await x.appendList("ks", "k", [v("x")]); // seals the deleted input, reads again
        const [oy] = await y.appendList("ks", "k", [v("y")]); // finds x's seal
        assert.deepEqual(
          [ox, oy].map((o) => o?.kind === "appended" && o.offset),
          [3n, 4n],
        );
        assert.deepEqual(await readAll(store, prefix), ["0:v0", "1:v1", "2:v2", "3:x", "4:y"]);
      } finally {
        await cleanup();
      }
    });

    it("never takes a committed offset again when a stale trim empties the key as it knows it", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const layout = new KeyspaceLayout(prefix, "ks").key("k");
        const config = { compactItemsThreshold: 100, compactObjectsThreshold: 2, changeLog: false };
        // The owner GETs its merge's inputs (no bodies kept in memory), and those GETs are held.
        const owner = heldReads(store, layout);
        const w = new StoreWriter({ store: owner.store, prefix, config: { ...config, compactionCacheBytes: 0 } });
        await w.createKeyspace("ks");
        await w.appendList("ks", "k", [v("a0")]);
        const trimming = pausingAfterDataList(store, layout);
        const stale = new StoreWriter({ store: trimming.store, prefix, config });
        assert.equal(await stale.nextOffset("ks", "k"), 1n); // cached from here on
        owner.hold();
        const committing = w.appendList("ks", "k", [v("b1")]); // acknowledged at 1, merged when released
        await untilListed(store, layout, 1n);
        // The trim has listed: the owner's merge of [o0, o1] runs to its end now.
        let released = false;
        trimming.arm(1, () => {
          released = true;
          owner.release();
          return committing;
        });
        await stale.trim("ks", "k", 1n); // the whole key, as far as this writer knows
        assert.ok(released, "the merge ran inside the trim");
        const [next] = await new StoreWriter({ store, prefix, config }).appendList("ks", "k", [v("new")]);
        assert.equal(next?.kind === "appended" && next.offset, 2n, "offset 1 holds b1");
        assert.deepEqual((await readAll(store, prefix)).slice(-2), ["1:b1", "2:new"]);
      } finally {
        await cleanup();
      }
    });

    it("never takes a committed offset again when a stale trim's end marker lies above another process's merge", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const layout = new KeyspaceLayout(prefix, "ks").key("k");
        const config = { compactItemsThreshold: 100, compactObjectsThreshold: 3, changeLog: false };
        const owner = heldReads(store, layout);
        const w = new StoreWriter({ store: owner.store, prefix, config: { ...config, compactionCacheBytes: 0 } });
        await w.createKeyspace("ks");
        await w.appendList("ks", "k", [v("a0")]);
        await w.appendList("ks", "k", [v("a1")]);
        const trimming = pausingAfterDataList(store, layout);
        const stale = new StoreWriter({ store: trimming.store, prefix, config });
        assert.equal(await stale.nextOffset("ks", "k"), 2n); // cached from here on
        owner.hold();
        const committing = w.appendList("ks", "k", [v("b2")]); // acknowledged at 2, merged into 0-2 when released
        await untilListed(store, layout, 2n);
        let released = false;
        trimming.arm(1, () => {
          released = true;
          owner.release();
          return committing;
        });
        // The whole key as this writer knows it: an end marker at 1 and the watermark on it,
        // above the merged object starting at 0.
        await stale.trim("ks", "k", 2n);
        assert.ok(released, "the merge ran inside the trim");
        const names = (await store.list(layout.dataPrefix)).objects.map((o) => layout.parseDataKey(o.key));
        assert.deepEqual(
          names.map((n) => n && [n.firstOffset, n.lastOffset, n.sizeBytes > 0n]),
          [
            [0n, 2n, true],
            [1n, 1n, false],
          ],
        );
        const [next] = await new StoreWriter({ store, prefix, config }).appendList("ks", "k", [v("new")]);
        assert.equal(next?.kind === "appended" && next.offset, 3n, "offset 2 holds b2");
        assert.deepEqual((await readAll(store, prefix)).slice(-2), ["2:b2", "3:new"]);
      } finally {
        await cleanup();
      }
    });

    it("never takes a seal for a merge's or a trim's output: a retried batch's items stay", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        let failNextDataPut = false;
        const flaky = wrap(store, {
          async put(k, b, o) {
            if (failNextDataPut && k.includes("/data_")) {
              failNextDataPut = false;
              throw new Error("socket hang up");
            }
            return store.put(k, b, o);
          },
        });
        const item = (value: string, timestamp: bigint, nonce: bigint) => ({
          value: Buffer.from(value),
          timestamp,
          nonce,
        });
        // Compaction: the sealed batch [x, y] retried as [x], then [y]; merging the two gives
        // back the seal's name (same offsets, timestamps, nonces, size and prior).
        const w = new StoreWriter({
          store: flaky,
          prefix,
          config: { compactItemsThreshold: 2, compactObjectsThreshold: 100, changeLog: false },
        });
        await w.createKeyspace("ks");
        await w.appendList("ks", "k", [item("a0", 1000n, 1n), item("a1", 1000n, 2n)]);
        const x = item("x", 2000n, 3n);
        const y = item("y", 2000n, 4n);
        failNextDataPut = true;
        await assert.rejects(w.appendList("ks", "k", [x, y]), /socket hang up/);
        await w.appendList("ks", "k", [x]);
        await w.appendList("ks", "k", [y]);
        assert.deepEqual(await readAll(store, prefix), ["0:a0", "1:a1", "2:x", "3:y"]);

        // Trim: a kept suffix cut from a merged object can also give back a seal's name.
        const t = new StoreWriter({ store: flaky, prefix, config: { compactObjectsThreshold: 2, changeLog: false } });
        await t.createKeyspace("ks2");
        await t.appendList("ks2", "k", [item("b0", 1000n, 1n)]);
        const z = item("z", 2000n, 2n);
        failNextDataPut = true;
        await assert.rejects(t.appendList("ks2", "k", [z]), /socket hang up/);
        await t.appendList("ks2", "k", [z]); // sealed, then committed again and merged with b0
        await t.trim("ks2", "k", 1n);
        const reader = new StoreReader({ store, prefix });
        const page = await reader.readPage("ks2", "k", { maxSize: 10 });
        assert.deepEqual(
          page.items.map((i) => `${i.offset}:${Buffer.from(i.value).toString()}`),
          ["1:z"],
        );
      } finally {
        await cleanup();
      }
    });

    it("refuses to merge objects with a gap between them, as from a LIST that missed one", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const layout = new KeyspaceLayout(prefix, "ks").key("k");
        const w = new StoreWriter({ store, prefix, config: { compactObjectsThreshold: 100, changeLog: false } });
        await w.createKeyspace("ks");
        for (const s of ["a", "b", "c"]) await w.appendList("ks", "k", [v(s)]);
        const state = await recoverKeyState(store, layout);
        const missed = { ...state, uncompacted: [state.uncompacted[0], state.uncompacted[2]] } as typeof state;
        const thresholds = { compactItemsThreshold: 100, compactSizeThreshold: 1 << 20, compactObjectsThreshold: 2 };
        await assert.rejects(
          compactKey(store, layout, missed, thresholds, "none", new InlineCodecPool()),
          PreconditionFailed,
        );
        assert.equal((await store.list(layout.dataPrefix)).objects.length, 3, "nothing merged, nothing deleted");
        assert.deepEqual(await readAll(store, prefix), ["0:a", "1:b", "2:c"]);
      } finally {
        await cleanup();
      }
    });

    it("merges objects that overlap as readers see them, and leaves alone those that disagree", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const layout = new KeyspaceLayout(prefix, "ks").key("k");
        const w = new StoreWriter({ store, prefix, config: { compactObjectsThreshold: 100, changeLog: false } });
        await w.createKeyspace("ks");
        await w.appendList("ks", "k", [
          { value: Buffer.from("a"), timestamp: 10n, nonce: 1n },
          { value: Buffer.from("b"), timestamp: 20n, nonce: 2n },
        ]);
        await w.appendList("ks", "k", [{ value: Buffer.from("c"), timestamp: 30n, nonce: 3n }]);
        const first = (await store.list(layout.dataPrefix)).objects[0]?.key;
        // An object derived from offsets 1-2 (as a stale merge written back after a trim can
        // leave): it starts inside the first object and hides the second. Readers take
        // offset 1 from the first object.
        const overlapping = async (second: { value: string; nonce: bigint }) => {
          const records = [
            { offset: 1n, timestamp: 20n, nonce: second.nonce, value: Buffer.from(second.value) },
            { offset: 2n, timestamp: 30n, nonce: second.nonce + 1n, value: Buffer.from("c") },
          ];
          const body = encodeDataObject(records, "none");
          const name = {
            firstOffset: 1n,
            lastOffset: 2n,
            minTimestamp: 20n,
            maxTimestamp: 30n,
            firstNonce: second.nonce,
            nextNonce: second.nonce + 2n,
            sizeBytes: BigInt(body.byteLength),
            priorStartOffset: 0n,
            compression: "none" as const,
          };
          await store.put(layout.dataKey(name), body);
          return layout.dataKey(name);
        };
        const thresholds = { compactItemsThreshold: 100, compactSizeThreshold: 1 << 20, compactObjectsThreshold: 2 };
        const compact = async () =>
          compactKey(store, layout, await recoverKeyState(store, layout), thresholds, "none", new InlineCodecPool());

        // Other items at offset 1 (nonce 1 again, so offset 2's nonce 2 does not follow on
        // offset 1's in the first object): not merged, nothing deleted.
        const stale = await overlapping({ value: "B", nonce: 1n });
        assert.deepEqual(await readAll(store, prefix), ["0:a", "1:b", "2:c"]);
        await assert.rejects(compact(), /do not follow on/);
        assert.equal((await store.list(layout.dataPrefix)).objects.length, 3, "nothing merged, nothing deleted");
        assert.deepEqual(await readAll(store, prefix), ["0:a", "1:b", "2:c"]);

        // The same items again: merged into one object holding each offset once.
        await store.delete([stale]);
        const derived = await overlapping({ value: "b", nonce: 2n });
        const after = await compact();
        assert.deepEqual(
          after.uncompacted.map((o) => [o.name.firstOffset, o.name.lastOffset]),
          [[0n, 2n]],
        );
        const left = (await store.list(layout.dataPrefix)).objects.map((o) => o.key);
        assert.ok(!left.includes(first as string) && !left.includes(derived), "the merged inputs are deleted");
        assert.deepEqual(await readAll(store, prefix), ["0:a", "1:b", "2:c"]);
        const [outcome] = await w.appendList("ks", "k", [v("d")]);
        assert.equal(outcome?.kind === "appended" && outcome.offset, 3n);
      } finally {
        await cleanup();
      }
    });

    it("commits a batch retried after its data write failed and its claim was sealed", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const layout = new KeyspaceLayout(prefix, "ks").key("k");
        let failNextDataPut = false;
        const flaky = wrap(store, {
          async put(k, b, o) {
            if (failNextDataPut && k.startsWith(layout.dataPrefix)) {
              failNextDataPut = false;
              throw new Error("socket hang up"); // the data PUT never landed
            }
            return store.put(k, b, o);
          },
        });
        const w = new StoreWriter({ store: flaky, prefix, config: { changeLog: false } });
        await w.createKeyspace("ks");
        await w.appendList("ks", "k", [{ value: Buffer.from("first"), timestamp: 1000n, nonce: 1n }]);
        // Explicit timestamp and nonce: the retry is the very same batch, as from a client,
        // the Kafka bridge or an import rerun.
        const batch = [{ value: Buffer.from("second"), timestamp: 2000n, nonce: 2n }];
        failNextDataPut = true;
        await assert.rejects(w.appendList("ks", "k", batch), /socket hang up/);
        // The retry recovers the key, seals the claim left without data and claims again.
        const [outcome] = await w.appendList("ks", "k", batch);
        assert.equal(outcome?.kind === "appended" && outcome.offset, 1n);
        assert.deepEqual(await readAll(store, prefix), ["0:first", "1:second"]);
      } finally {
        await cleanup();
      }
    });
  });
}
