// Bounded memory: the writer's and reader's RSS, sampled once a second from their own
// metrics, during a sustained AppendSession ingest with a slow follower reading one of the
// keys being written (a follower that takes each message late must not make the reader
// buffer).

import { setTimeout as sleep } from "node:timers/promises";
import { KlstoreClient } from "@klstore/client";
import type { Shard } from "@klstore/sharding";
import { scrape } from "../../../e2e/support/processes.ts";
import { appendSession } from "./drivers.ts";

export interface MemoryTrace {
  readonly seconds: number[];
  readonly writerMiB: number[];
  readonly readerMiB: number[];
  readonly itemsWritten: number;
  readonly itemsFollowed: number;
}

const rss = async (metrics: string) => (await scrape(metrics, "klstore_process_resident_memory_bytes")) / 2 ** 20;

export async function memoryUnderLoad(options: {
  shards: readonly Shard[];
  reader: string;
  writerMetrics: string;
  readerMetrics: string;
  keyspace: string;
  durationSeconds: number;
}): Promise<MemoryTrace> {
  const trace: MemoryTrace = { seconds: [], writerMiB: [], readerMiB: [], itemsWritten: 0, itemsFollowed: 0 };
  const stop = new AbortController();
  const started = Date.now();
  const client = new KlstoreClient({ writers: options.shards, reader: options.reader });
  let written = 0;
  let followed = 0;
  const writing = (async () => {
    while (!stop.signal.aborted) {
      await appendSession(options.shards, options.keyspace, 100, 10_000, 1024);
      written += 10_000;
    }
  })();
  const following = (async () => {
    // key-0 is one of the keys written; the follower takes a message every 20 ms at most.
    for await (const _ of client.items(options.keyspace, "key-0", {
      follow: true,
      pageSize: 100,
      signal: stop.signal,
    })) {
      followed++;
      await sleep(20);
    }
  })();
  const sampling = (async () => {
    while (!stop.signal.aborted) {
      trace.seconds.push((Date.now() - started) / 1000);
      trace.writerMiB.push(await rss(options.writerMetrics));
      trace.readerMiB.push(await rss(options.readerMetrics));
      await sleep(1000);
    }
  })();
  await sleep(options.durationSeconds * 1000);
  stop.abort();
  await Promise.all([writing, following.catch(() => {}), sampling]);
  client.close();
  return { ...trace, itemsWritten: written, itemsFollowed: followed };
}

/** Max over min of the samples after the first quarter (warm-up). */
export function flatness(samples: readonly number[]): number {
  const steady = samples.slice(Math.floor(samples.length / 4));
  if (steady.length === 0) return 1;
  return Math.max(...steady) / Math.min(...steady);
}
