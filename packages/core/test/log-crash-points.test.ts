// A crash at every single storage write of the shared log's protocol: segments, restart
// fences, slot records, materialized objects, progress segments and deletions. The writer
// stops at the K-th PUT or DELETE (once before it takes effect, once right after); a new
// instance of it takes over and re-sends what was not acknowledged. Every item must then
// be there exactly once, in order, through the log and, once materialized, without it.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LogTail } from "../src/log/log-tail.ts";
import { LogWriter } from "../src/log/log-writer.ts";
import { StoreReader } from "../src/reader/store-reader.ts";
import type { ObjectStore, PutOptions } from "../src/storage/object-store.ts";
import { StoreWriter } from "../src/writer/store-writer.ts";
import { backends } from "./backends.ts";
import { readKey } from "./read-key.ts";

const ITEMS = 8;
const KEYS = ["a", "b"];
const LOG = { logLanes: 1, logRetentionMillis: 0, logDeleteDelayMillis: 0, logDutyCycleMillis: 0 };

class Crash extends Error {}

/** Passes everything through until the K-th write, which "crashes" before or after it lands. */
function crashingStore(
  inner: ObjectStore,
  crashAt: number,
  when: "before" | "after",
): ObjectStore & { writes: number } {
  const store = {
    writes: 0,
    description: inner.description,
    get: (key: string) => inner.get(key),
    getRange: (key: string, start: number, end?: number) =>
      inner.getRange ? inner.getRange(key, start, end) : Promise.resolve(undefined),
    list: inner.list.bind(inner),
    listFolders: (prefix: string) => inner.listFolders(prefix),
    put: (key: string, body: Uint8Array, options?: PutOptions) => write(() => inner.put(key, body, options)),
    delete: (keys: readonly string[]) => write(() => inner.delete(keys)),
    close: async () => {},
  };
  const write = async (op: () => Promise<void>) => {
    store.writes++;
    if (store.writes === crashAt && when === "before") throw new Crash();
    if (store.writes > crashAt) throw new Crash(); // a dead process writes nothing more
    await op();
    if (store.writes === crashAt) throw new Crash();
  };
  return store;
}

/** Appends ITEMS items per key, one per call with nonces, materializing halfway and at the end. */
async function run(writer: LogWriter, from: Map<string, number>): Promise<void> {
  for (let n = 0; n < ITEMS; n++) {
    for (const key of KEYS) {
      if (n < (from.get(key) ?? 0)) continue;
      await writer.appendList("ks", key, [{ value: Buffer.from(`${key}${n}`), nonce: BigInt(n) }]);
      from.set(key, n + 1);
    }
    if (n === ITEMS / 2) {
      await writer.materializeAll();
      await writer.collectGarbage();
    }
  }
  await writer.materializeAll();
  await writer.collectGarbage();
}

const expected = (key: string) => Array.from({ length: ITEMS }, (_, n) => `${n}:${key}${n}`);
const text = (items: { offset: bigint; value: Uint8Array }[]) =>
  items.map((i) => `${i.offset}:${Buffer.from(i.value)}`);

for (const backend of backends()) {
  describe(`log: crash at every write (${backend.name})`, () => {
    it("loses nothing acknowledged and shows no duplicate after any crash point", async (t) => {
      let total = 0;
      {
        const { store, prefix, cleanup } = await backend.open();
        await new StoreWriter({ store, prefix }).createKeyspace("ks");
        const counting = crashingStore(store, Number.POSITIVE_INFINITY, "after");
        const writer = new LogWriter({ store: counting, prefix, name: "w", log: LOG });
        await writer.open();
        await run(writer, new Map());
        total = counting.writes;
        await cleanup();
      }
      assert.ok(total >= 2 * ITEMS, `segments, records, objects, progress, deletes: ${total} writes`);

      for (let crashAt = 1; crashAt <= total; crashAt++) {
        for (const when of ["before", "after"] as const) {
          const label = `crash ${when} write ${crashAt}`;
          const { store, prefix, cleanup } = await backend.open();
          try {
            await new StoreWriter({ store, prefix }).createKeyspace("ks");
            const crashing = new LogWriter({ store: crashingStore(store, crashAt, when), prefix, name: "w", log: LOG });
            crashing.onBackgroundError = () => {};
            const acked = new Map<string, number>();
            try {
              await crashing.open();
              await run(crashing, acked);
            } catch (err) {
              // The crash, or what it left a call with (a segment that never came back).
              if (!(err instanceof Crash)) throw err;
            }
            // The restarted writer re-sends from each key's first unacknowledged item; some
            // of those may have landed before the crash and must come back as duplicates.
            const restarted = new LogWriter({ store, prefix, name: "w", log: LOG });
            await restarted.open();
            await run(restarted, acked);
            const viaLog = new StoreReader({
              store,
              prefix,
              config: { listPageSize: 2 },
              logTail: new LogTail(store, prefix),
            });
            const plain = new StoreReader({ store, prefix, config: { listPageSize: 2 } });
            for (const key of KEYS) {
              assert.deepEqual(
                text(await readKey(viaLog, { key, maxSize: 3 })),
                expected(key),
                `${label}: ${key} via the log`,
              );
              assert.deepEqual(
                text(await readKey(plain, { key, maxSize: 3, order: "backwards" })),
                expected(key).reverse(),
                `${label}: ${key} from its per-key objects alone`,
              );
            }
            await restarted.close();
          } finally {
            await cleanup();
          }
        }
      }
      t.diagnostic(`${total} writes per run, ${2 * total} crash scenarios`);
    });
  });
}
