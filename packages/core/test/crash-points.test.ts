// A crash at every single storage write of a run of appends and compactions: the writer
// stops at the K-th PUT or DELETE (once before it takes effect, once right after), a new
// writer takes over and re-sends what was not acknowledged. Readers must then see every
// item exactly once, in order, both ways; the new writer must clean up what the crash left.
// This covers crashes between claim and data, between a merged object and the deletion of
// its inputs, and between that deletion and the watermark.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KeyspaceLayout } from "../src/format/layout.ts";
import { parseListing, resolveChain } from "../src/format/object-chain.ts";
import type { Item } from "../src/format/records.ts";
import { StoreReader } from "../src/reader/store-reader.ts";
import type { ObjectStore, PutOptions } from "../src/storage/object-store.ts";
import { StoreWriter } from "../src/writer/store-writer.ts";
import { backends } from "./backends.ts";
import { readKey } from "./read-key.ts";

const ITEMS = 10;
const CONFIG = { compactObjectsThreshold: 3, compactItemsThreshold: 5 };

class Crash extends Error {}

/** Passes everything through until the K-th write, which "crashes" before or after it lands. */
function crashingStore(inner: ObjectStore, crashAt: number, when: "before" | "after"): ObjectStore {
  let writes = 0;
  const write = async (op: () => Promise<void>) => {
    writes++;
    if (writes === crashAt && when === "before") throw new Crash();
    if (writes > crashAt) throw new Crash(); // a dead process writes nothing more
    await op();
    if (writes === crashAt) throw new Crash();
  };
  return {
    description: inner.description,
    get: (key) => inner.get(key),
    list: (prefix, options) => inner.list(prefix, options),
    listFolders: (prefix) => inner.listFolders(prefix),
    put: (key: string, body: Uint8Array, options?: PutOptions) => write(() => inner.put(key, body, options)),
    delete: (keys) => write(() => inner.delete(keys)),
    close: async () => {},
  };
}

/** Appends items ITEMS one per call with nonces; returns how many were acknowledged. */
async function appendFrom(writer: StoreWriter, first: number): Promise<number> {
  let acked = first;
  try {
    for (let n = first; n < ITEMS; n++) {
      await writer.appendList("ks", "k", [{ value: Buffer.from(`v${n}`), nonce: BigInt(n) }]);
      acked = n + 1;
    }
  } catch (err) {
    if (!(err instanceof Crash)) throw err;
  }
  return acked;
}

const readAll = (reader: StoreReader, order: "forwards" | "backwards") => readKey(reader, { order, maxSize: 3 });

for (const backend of backends()) {
  describe(`crash at every write (${backend.name})`, () => {
    it("loses nothing acknowledged and shows no duplicate after any crash point", async (t) => {
      // A clean run tells how many writes there are to crash at.
      let total = 0;
      {
        const { store, prefix, cleanup } = await backend.open();
        const counting = crashingStore(store, Number.POSITIVE_INFINITY, "after");
        const writer = new StoreWriter({ store: counting, prefix, config: CONFIG });
        await new StoreWriter({ store, prefix }).createKeyspace("ks");
        const put = counting.put;
        const del = counting.delete;
        counting.put = (...args) => (total++, put(...args));
        counting.delete = (...args) => (total++, del(...args));
        assert.equal(await appendFrom(writer, 0), ITEMS);
        await cleanup();
      }
      assert.ok(total >= 2 * ITEMS + 6, `claims, data, merges, deletes, watermarks: ${total} writes`);

      for (let crashAt = 1; crashAt <= total; crashAt++) {
        for (const when of ["before", "after"] as const) {
          const { store, prefix, cleanup } = await backend.open();
          try {
            await new StoreWriter({ store, prefix }).createKeyspace("ks");
            const crashing = new StoreWriter({ store: crashingStore(store, crashAt, when), prefix, config: CONFIG });
            crashing.onCompactionError = () => {}; // the crash; the append it followed was durable
            const acked = await appendFrom(crashing, 0);
            // The restarted writer re-sends from the first unacknowledged item; some of
            // those may have landed before the crash and must come back as duplicates.
            const restarted = new StoreWriter({ store, prefix, config: CONFIG });
            assert.equal(await appendFrom(restarted, acked), ITEMS);

            const label = `crash ${when} write ${crashAt}`;
            const reader = new StoreReader({ store, prefix, config: { listPageSize: 2 } });
            const forwards = await readAll(reader, "forwards");
            assert.deepEqual(
              forwards.map((i) => `${i.offset}:${i.nonce}:${Buffer.from(i.value)}`),
              Array.from({ length: ITEMS }, (_, n) => `${n}:${n}:v${n}`),
              label,
            );
            const backwards = await readAll(reader, "backwards");
            assert.deepEqual(
              backwards.map((i) => i.offset),
              forwards.map((i) => i.offset).reverse(),
              label,
            );
            // Leftovers are removed when a writer next recovers the key, i.e. on its next append,
            // except one ending where its container ends: a trim's kept suffix has that shape
            // until the trim deletes the object it was cut from (docs/fencing.md). One crash
            // interrupts at most one merge, whose last input alone has that shape.
            await restarted.appendList("ks", "k", [{ value: Buffer.from("one more") }]);
            const layout = new KeyspaceLayout(prefix, "ks").key("k");
            const listed = await store.list(layout.dataPrefix);
            const { leftovers } = resolveChain(parseListing(layout, listed.objects));
            assert.ok(
              leftovers.length <= 1,
              `${label}: the restarted writer removed the leftovers: ${leftovers.map((o) => o.key).join(", ")}`,
            );
          } finally {
            await cleanup();
          }
        }
      }
      t.diagnostic(`${total} writes per run, ${2 * total} crash scenarios`);
    });
  });
}
