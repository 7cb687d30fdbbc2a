// A short unmeasured pass of every driver before the measured scenarios. klstore's processes
// start with the run, so their first scenario would otherwise include V8 compiling its hot
// paths, while the Kafka broker's JVM and the Redis and S3 servers have been running for
// minutes: the first rows measured a cold klstore against warm peers. The load generator's
// own clients (the SDK, the Kafka and Redis clients) are compiled here too.

import type { Shard } from "@klstore/sharding";
import { appendSession, readStream, unaryAppend } from "./klstore/drivers.ts";
import { kafkaConsume, kafkaProduce } from "./peers/kafka.ts";
import { rawGet, rawPut, type S3Target } from "./peers/raw-s3.ts";
import { redisAdd, redisRange } from "./peers/redis.ts";

export interface WarmUpTargets {
  /** Writer shards whose processes measured rows come from (the default and seed-batching ones). */
  readonly writerClusters: readonly (readonly Shard[])[];
  readonly s3: S3Target;
  /** Where raw objects of the warm-up go. */
  readonly rawPrefix: string;
  readonly kafka: string;
  readonly redis: string;
  /** Makes a keyspace for the writer cluster of that index (they may have storages of their own). */
  createKeyspace(name: string, cluster: number): Promise<unknown>;
}

/** Items per warm-up pass: enough for V8 to optimize the per-item and per-batch paths. */
export interface WarmUpScale {
  readonly items: number;
}

export const WARM_UP_SCALE = { full: { items: 100_000 }, smoke: { items: 200 } } as const;

/** Runs every ingest driver once; returns the keyspace and key a reader can be warmed on. */
export async function warmUpIngest(
  targets: WarmUpTargets,
  scale: WarmUpScale,
  runId: string,
): Promise<{ keyspace: string; key: string; items: number; size: number }> {
  const { items } = scale;
  // 100 B items (the per-item paths) and 1 KiB over several keys (the per-batch paths), each
  // writer process in keyspaces of its own (they share the storage, and a key has one owner).
  for (const [i, shards] of targets.writerClusters.entries()) {
    const keyspace = `warm-up-${runId}-${i}`;
    for (const name of [keyspace, `${keyspace}-kib`, `${keyspace}-unary`]) await targets.createKeyspace(name, i);
    await appendSession(shards, keyspace, 1, items, 100);
    await appendSession(shards, `${keyspace}-kib`, 10, Math.ceil(items / 5), 1024);
    // Only the default writer's unary Append is measured (the seed batching holds each one up to 1 s).
    if (i === 0) await unaryAppend(shards, `${keyspace}-unary`, 10, Math.ceil(items / 10), 100);
  }
  const raw = await rawPut(targets.s3, `${targets.rawPrefix}warm-up-${runId}/`, items, items * 100);
  await rawGet(targets.s3, raw.keys, items, items * 100);
  const topic = `warm-up-${runId}`;
  await kafkaProduce(targets.kafka, topic, 1, items, 100);
  await kafkaConsume(targets.kafka, topic, items, 100);
  await redisAdd(targets.redis, topic, 1, items, 100);
  await redisRange(targets.redis, `${topic}:0`, items, 100, "forwards");
  return { keyspace: `warm-up-${runId}-0`, key: "key-0", items, size: 100 };
}

/** One pass forwards and one backwards through a reader process before it is measured. */
export async function warmUpReader(
  reader: string,
  key: { keyspace: string; key: string; items: number; size: number },
): Promise<void> {
  await readStream(reader, key.keyspace, key.key, key.items, key.size, "forwards");
  await readStream(reader, key.keyspace, key.key, key.items, key.size, "backwards");
}
