// Where the bridge's insertions go: a batching writer in this process (the seed's design),
// or the writer service, so the bridge never competes with a writer shard for a key.
// Either way `submit` resolves once the insertion is admitted, in call order per key, and
// its `durable` promise once it is stored (or was a duplicate).

import { setTimeout as sleep } from "node:timers/promises";
import { KlstoreClient } from "@klstore/client";
import type { BatchingStoreWriter, Insertion } from "@klstore/core";
import type { Shard } from "@klstore/sharding";

export interface AppendSink {
  submit(keyspace: string, key: string, insertion: Insertion): Promise<{ durable: Promise<unknown> }>;
  /** Makes everything submitted so far durable. */
  flushAll(): Promise<void>;
  close(): Promise<void>;
}

export function writerSink(writer: BatchingStoreWriter): AppendSink {
  return {
    async submit(keyspace, key, insertion) {
      const { outcome } = await writer.submit(keyspace, key, [insertion]);
      return { durable: outcome };
    },
    flushAll: () => writer.flushAll(),
    close: () => writer.close(),
  };
}

interface PendingKey {
  readonly keyspace: string;
  readonly key: string;
  insertions: Insertion[];
  settle: { resolve: () => void; reject: (err: unknown) => void }[];
  /** The previous send for this key; sends of one key never overlap, which keeps order. */
  sending: Promise<void>;
}

/**
 * Appends through the writer service, batching each key's insertions for up to
 * `flushIntervalMillis` or `maxBatch` items into one Append call.
 */
export function serviceSink(shards: readonly Shard[], flushIntervalMillis: number, maxBatch = 10_000): AppendSink {
  const client = new KlstoreClient({ writers: shards, reader: shards[0]?.address ?? "127.0.0.1:1" });
  const keys = new Map<string, PendingKey>();
  let closed = false;

  function send(entry: PendingKey): Promise<void> {
    const insertions = entry.insertions;
    const settle = entry.settle;
    entry.insertions = [];
    entry.settle = [];
    entry.sending = entry.sending.then(async () => {
      if (insertions.length === 0) return;
      try {
        await client.append(entry.keyspace, entry.key, insertions);
        for (const s of settle) s.resolve();
      } catch (err) {
        for (const s of settle) s.reject(err);
      }
    });
    return entry.sending;
  }

  const timer = (async () => {
    while (!closed) {
      await sleep(Math.max(1, flushIntervalMillis));
      await Promise.all([...keys.values()].map(send));
    }
  })();

  return {
    async submit(keyspace, key, insertion) {
      const id = JSON.stringify([keyspace, key]);
      let entry = keys.get(id);
      if (!entry) {
        entry = { keyspace, key, insertions: [], settle: [], sending: Promise.resolve() };
        keys.set(id, entry);
      }
      entry.insertions.push(insertion);
      const durable = new Promise<void>((resolve, reject) => entry.settle.push({ resolve, reject }));
      durable.catch(() => {});
      if (entry.insertions.length >= maxBatch) await send(entry);
      return { durable };
    },
    async flushAll() {
      await Promise.all([...keys.values()].map(send));
    },
    async close() {
      closed = true;
      await Promise.all([...keys.values()].map(send));
      await timer;
      client.close();
    },
  };
}
