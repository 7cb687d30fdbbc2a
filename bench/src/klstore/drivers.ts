// klstore through its gRPC services, as a user drives it: AppendSession (pipelined appends
// for many keys on one stream, the high-throughput path), unary Append for contrast, and
// ReadStream for sequential reads.

import { once } from "node:events";
import { create } from "@bufbuild/protobuf";
import { Client, credentials } from "@grpc/grpc-js";
import { KlstoreClient } from "@klstore/client";
import {
  AppendSessionRequestSchema,
  type AppendSessionResponse,
  CHANNEL_OPTIONS,
  callBidiStream,
  packInsertions,
  WriterService,
} from "@klstore/proto";
import type { Shard } from "@klstore/sharding";
import { payload, pool, type Throughput, throughput } from "../measure.ts";

/** Items per request: a producer batches what it has for a key, as Kafka's producer does. */
const BATCH = 100;
/**
 * Requests in flight per session before waiting for acknowledgements. The writer
 * acknowledges a request once its items are durable; with 10,000 keys a window of 256
 * requests measured the window, not the writer. 2,048 requests are up to 204,800 items in
 * flight, and a fifth of the 10,000-key scenario's keys at once.
 */
export const APPEND_SESSION_WINDOW = 2048;

interface Plan {
  readonly key: number;
  readonly first: number;
  readonly count: number;
}

/** Splits `items` over `keys` into requests of at most BATCH items of one key. */
function plan(keys: number, items: number): Plan[] {
  const perKey = Math.ceil(items / keys);
  const requests: Plan[] = [];
  let i = 0;
  for (let offset = 0; offset < perKey && i < items; offset += BATCH) {
    for (let key = 0; key < keys && i < items; key++) {
      const count = Math.min(BATCH, perKey - offset, items - i);
      requests.push({ key, first: i, count });
      i += count;
    }
  }
  return requests;
}

export async function appendSession(
  shards: readonly Shard[],
  keyspace: string,
  keys: number,
  items: number,
  size: number,
  system = "klstore AppendSession",
): Promise<Throughput> {
  const requests = plan(keys, items);
  // One session per shard, each carrying the keys that shard owns (as a routing client would).
  const routing = new KlstoreClient({ writers: shards, reader: "127.0.0.1:1" });
  const byShard = new Map<string, Plan[]>();
  for (const r of requests) {
    const owner = routing.ring.ownerOf(keyspace, `key-${r.key}`).name;
    byShard.set(owner, [...(byShard.get(owner) ?? []), r]);
  }
  routing.close();
  return throughput(system, items, items * size, async () => {
    await Promise.all(
      [...byShard].map(async ([name, mine]) => {
        const shard = shards.find((s) => s.name === name) as Shard;
        const client = new Client(shard.address, credentials.createInsecure(), CHANNEL_OPTIONS);
        const stream = callBidiStream(client, WriterService, "appendSession");
        let acked = 0;
        let failed: string | undefined;
        // Woken by an acknowledgement when the window is full: polling for it (setImmediate
        // in a loop) kept a core busy and starved the writer and S3 server beside it.
        let windowOpened: (() => void) | undefined;
        let ended = false;
        const done = (async () => {
          try {
            for await (const response of stream as AsyncIterable<AppendSessionResponse>) {
              if (response.error) failed ??= response.error.message;
              acked++;
              windowOpened?.();
            }
          } finally {
            ended = true;
            windowOpened?.();
          }
        })();
        for (const [sequence, r] of mine.entries()) {
          while (sequence - acked >= APPEND_SESSION_WINDOW && !ended) {
            await new Promise<void>((resolve) => {
              windowOpened = resolve;
            });
            windowOpened = undefined;
          }
          const ok = stream.write(
            create(AppendSessionRequestSchema, {
              sequence: BigInt(sequence),
              keyspace,
              key: `key-${r.key}`,
              // Packed, as the TypeScript client sends them (one byte string, not a message per item).
              packedInsertions: packInsertions(
                Array.from({ length: r.count }, (_, j) => ({ value: payload(size, r.first + j) })),
              ),
            }),
          );
          if (!ok) await once(stream, "drain");
        }
        stream.end();
        await done;
        client.close();
        if (failed) throw new Error(`AppendSession: ${failed}`);
      }),
    );
  });
}

export async function unaryAppend(
  shards: readonly Shard[],
  keyspace: string,
  keys: number,
  items: number,
  size: number,
): Promise<Throughput> {
  const requests = plan(keys, items);
  const client = new KlstoreClient({ writers: shards, reader: "127.0.0.1:1" });
  const result = await throughput("klstore Append (unary, 32 in flight)", items, items * size, () =>
    pool(requests.length, 32, async (n) => {
      const r = requests[n] as Plan;
      await client.append(
        keyspace,
        `key-${r.key}`,
        Array.from({ length: r.count }, (_, j) => ({ value: payload(size, r.first + j) })),
      );
    }),
  );
  client.close();
  return result;
}

export async function readStream(
  reader: string,
  keyspace: string,
  key: string,
  items: number,
  size: number,
  order: "forwards" | "backwards",
): Promise<Throughput> {
  const client = new KlstoreClient({ writers: "unused=127.0.0.1:1", reader });
  const result = await throughput(`klstore ReadStream ${order}`, items, items * size, async () => {
    let seen = 0;
    for await (const _ of client.items(keyspace, key, { order, pageSize: 5000 })) seen++;
    if (seen !== items) throw new Error(`ReadStream ${order} returned ${seen} of ${items} items`);
  });
  client.close();
  return result;
}
