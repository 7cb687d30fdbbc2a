// The bridge's in-process sink keeps each key's records in order through failures, on the
// real writer and storage (filesystem and SeaweedFS): a batch another writer fenced is
// stored again before anything later of its key (a later record stored first would make
// it a duplicate: lost), a key whose append failed otherwise gets nothing more stored, and
// a bad record stops nothing. A store wrapper holds or fails one chosen PUT, so the
// interleavings are exact.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BatchingStoreWriter, type Insertion, type ObjectStore, StoreReader, StoreWriter } from "@klstore/core";
import { backends } from "../../../packages/core/test/backends.ts";
import { type AppendSink, writerSink } from "../src/append-sink.ts";

/** Passes every call to `inner`; the first PUT whose key matches `when` runs `first` instead. */
function interceptFirstPut(
  inner: ObjectStore,
  when: RegExp,
  first: (put: () => Promise<void>) => Promise<void>,
): ObjectStore {
  let intercepted = false;
  return {
    description: inner.description,
    get: (key) => inner.get(key),
    put(key, body, options) {
      if (intercepted || !when.test(key)) return inner.put(key, body, options);
      intercepted = true;
      return first(() => inner.put(key, body, options));
    },
    delete: (keys) => inner.delete(keys),
    list: (prefix, options) => inner.list(prefix, options),
    listFolders: (prefix) => inner.listFolders(prefix),
    close: () => inner.close(),
  };
}

const record = (n: number): Insertion => ({ value: Buffer.from(`r${n}`), nonce: BigInt(n) });

async function stored(reader: StoreReader, key: string): Promise<string[]> {
  const page = await reader.readPage("bridged", key, { maxSize: 1000 });
  return page.items.map((i) => `${i.nonce}:${Buffer.from(i.value).toString()}`);
}

/** Settles every durable promise: "ok" or the error's name. */
async function outcomes(durables: Promise<unknown>[]): Promise<string[]> {
  return Promise.all(
    durables.map((d) =>
      d.then(
        () => "ok",
        (err: Error) => err.name,
      ),
    ),
  );
}

for (const backend of backends()) {
  describe(`the bridge's in-process sink (${backend.name})`, () => {
    it("stores a fenced batch again before the key's later records, so none becomes a duplicate", async () => {
      const opened = await backend.open();
      const other = new StoreWriter({ store: opened.store, prefix: opened.prefix });
      await other.createKeyspace("bridged");
      const claimReached = Promise.withResolvers<void>();
      const release = Promise.withResolvers<void>();
      const store = interceptFirstPut(opened.store, /claim_/, async (put) => {
        claimReached.resolve();
        await release.promise;
        await put();
      });
      const writer = new BatchingStoreWriter({
        store,
        prefix: opened.prefix,
        batching: { batchFlushIntervalMillis: 0, batchCheckIntervalMillis: 5 },
      });
      const sink: AppendSink = writerSink(writer, writer.batching);
      try {
        const durables = [(await sink.submit("bridged", "0", record(1))).durable];
        await claimReached.promise; // r1's commit is about to claim the key's first offset
        for (let n = 2; n <= 5; n++) durables.push((await sink.submit("bridged", "0", record(n))).durable);
        // Meanwhile another writer (the partition's former owner, say) commits there first.
        await other.appendList("bridged", "0", [{ value: Buffer.from("r0"), nonce: 0n }]);
        release.resolve();
        await sink.flushAll();
        assert.deepEqual(await outcomes(durables), ["ok", "ok", "ok", "ok", "ok"]);
        const reader = new StoreReader({ store: opened.store, prefix: opened.prefix });
        assert.deepEqual(await stored(reader, "0"), ["0:r0", "1:r1", "2:r2", "3:r3", "4:r4", "5:r5"]);
      } finally {
        await sink.close();
        await opened.cleanup();
      }
    });

    it("takes no more than writer_thread_queue_capacity waiting records: the next waits for a batch (backpressure)", async () => {
      const opened = await backend.open();
      await new StoreWriter({ store: opened.store, prefix: opened.prefix }).createKeyspace("bridged");
      const dataReached = Promise.withResolvers<void>();
      const release = Promise.withResolvers<void>();
      const store = interceptFirstPut(opened.store, /\/data_/, async (put) => {
        dataReached.resolve();
        await release.promise;
        await put();
      });
      const writer = new BatchingStoreWriter({
        store,
        prefix: opened.prefix,
        batching: { batchFlushIntervalMillis: 0, batchCheckIntervalMillis: 5, writerThreadQueueCapacity: 3 },
      });
      const sink = writerSink(writer, writer.batching);
      try {
        const durables = [(await sink.submit("bridged", "0", record(1))).durable];
        await dataReached.promise; // r1's batch is being stored
        for (let n = 2; n <= 4; n++) durables.push((await sink.submit("bridged", "0", record(n))).durable);
        let taken = false;
        const fifth = sink.submit("bridged", "0", record(5)).then((r) => {
          taken = true;
          return r;
        });
        for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
        assert.equal(taken, false, "a fourth waiting record waits while the batch is stored");
        release.resolve();
        durables.push((await fifth).durable);
        await sink.flushAll();
        assert.deepEqual(await outcomes(durables), ["ok", "ok", "ok", "ok", "ok"]);
        const reader = new StoreReader({ store: opened.store, prefix: opened.prefix });
        assert.deepEqual(await stored(reader, "0"), ["1:r1", "2:r2", "3:r3", "4:r4", "5:r5"]);
      } finally {
        await sink.close();
        await opened.cleanup();
      }
    });

    it("after a failed append stores nothing more of that key, but goes on with other keys and past bad records", async () => {
      const opened = await backend.open();
      await new StoreWriter({ store: opened.store, prefix: opened.prefix }).createKeyspace("bridged");
      const dataReached = Promise.withResolvers<void>();
      const fail = Promise.withResolvers<void>();
      const store = interceptFirstPut(opened.store, /^.*\/0\/data_/, async () => {
        dataReached.resolve();
        await fail.promise;
        throw new Error("storage went away");
      });
      const writer = new BatchingStoreWriter({
        store,
        prefix: opened.prefix,
        config: { maxValueBytes: 16 },
        batching: { batchFlushIntervalMillis: 0, batchCheckIntervalMillis: 5 },
      });
      const sink = writerSink(writer, writer.batching);
      try {
        const key0 = [(await sink.submit("bridged", "0", record(1))).durable];
        await dataReached.promise;
        for (let n = 2; n <= 3; n++) key0.push((await sink.submit("bridged", "0", record(n))).durable);
        fail.resolve();
        await key0[0]?.catch(() => {});
        key0.push((await sink.submit("bridged", "0", record(4))).durable); // after the failure
        const key1 = [
          (await sink.submit("bridged", "1", record(1))).durable,
          (await sink.submit("bridged", "1", { value: Buffer.alloc(17), nonce: 2n })).durable, // too large
          (await sink.submit("bridged", "1", record(3))).durable,
        ];
        await sink.flushAll();
        assert.deepEqual(await outcomes(key0), ["Error", "Error", "Error", "Error"]);
        assert.deepEqual(await outcomes(key1), ["ok", "InvalidArgument", "ok"]);
        const reader = new StoreReader({ store: opened.store, prefix: opened.prefix });
        assert.deepEqual(await stored(reader, "0"), [], "nothing after the failed record: a restart replays them all");
        assert.deepEqual(await stored(reader, "1"), ["1:r1", "3:r3"]);
      } finally {
        await sink.close();
        await opened.cleanup();
      }
    });
  });
}
