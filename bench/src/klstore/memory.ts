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
  /** What the writer's compaction cache and the reader's object cache held at each sample. */
  readonly writerCacheMiB: number[];
  readonly readerCacheMiB: number[];
  /** Samples from this index on are after the warm-up (`WarmUp`). */
  warmUpSamples: number;
  warmUpSeconds: number;
  readonly itemsWritten: number;
  readonly itemsFollowed: number;
}

/**
 * When the warm-up ends. Both processes keep bounded caches (the writer the bodies it will
 * merge, the reader the objects it served) that fill under this load within some tens of
 * seconds; RSS growing while they fill is the warm-up the target excludes, not a leak. So
 * the warm-up lasts until neither cache reached a new peak over the last few samples, and at least
 * `minSeconds` (V8 sizing its heap), at most `maxSeconds` (a cache still growing by then is
 * measured growing).
 */
export interface WarmUp {
  readonly minSeconds: number;
  readonly maxSeconds: number;
  readonly settledSamples: number;
}

export const MEMORY_WARM_UP = {
  full: { minSeconds: 10, maxSeconds: 60, settledSamples: 5 },
  smoke: { minSeconds: 1, maxSeconds: 2, settledSamples: 1 },
} as const satisfies Record<string, WarmUp>;

/**
 * Whether neither cache reached a new peak over the last `n` samples. Peaks, not levels:
 * under this load every key compacts at about the same time, so the writer's cache swings
 * between empty and its bound and never holds still; its peak does, once it reaches the bound.
 */
function settled(trace: MemoryTrace, n: number): boolean {
  if (trace.seconds.length <= n) return false;
  return [trace.writerCacheMiB, trace.readerCacheMiB].every(
    (cache) => Math.max(...cache.slice(-n)) <= Math.max(...cache.slice(0, -n)),
  );
}

const mib = async (metrics: string, name: string) => (await scrape(metrics, name)) / 2 ** 20;

/**
 * Runs the load through a warm-up (`WarmUp`), then for `durationSeconds` more, sampling
 * both processes' RSS and caches once a second throughout.
 */
export async function memoryUnderLoad(options: {
  shards: readonly Shard[];
  reader: string;
  writerMetrics: string;
  readerMetrics: string;
  keyspace: string;
  warmUp: WarmUp;
  durationSeconds: number;
}): Promise<MemoryTrace> {
  const { warmUp } = options;
  const trace: MemoryTrace = {
    seconds: [],
    writerMiB: [],
    readerMiB: [],
    writerCacheMiB: [],
    readerCacheMiB: [],
    warmUpSamples: 0,
    warmUpSeconds: 0,
    itemsWritten: 0,
    itemsFollowed: 0,
  };
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
  let warmedUp: number | undefined;
  while (warmedUp === undefined || (Date.now() - warmedUp) / 1000 < options.durationSeconds) {
    const seconds = (Date.now() - started) / 1000;
    trace.seconds.push(seconds);
    trace.writerMiB.push(await mib(options.writerMetrics, "klstore_process_resident_memory_bytes"));
    trace.readerMiB.push(await mib(options.readerMetrics, "klstore_process_resident_memory_bytes"));
    trace.writerCacheMiB.push(await mib(options.writerMetrics, "klstore_writer_compaction_cache_bytes"));
    trace.readerCacheMiB.push(await mib(options.readerMetrics, "klstore_object_cache_bytes"));
    const due = seconds >= warmUp.minSeconds && (settled(trace, warmUp.settledSamples) || seconds >= warmUp.maxSeconds);
    if (warmedUp === undefined && due) {
      warmedUp = Date.now();
      trace.warmUpSamples = trace.seconds.length - 1;
      trace.warmUpSeconds = seconds;
    }
    await sleep(1000);
  }
  stop.abort();
  await Promise.all([writing, following.catch(() => {})]);
  client.close();
  return { ...trace, itemsWritten: written, itemsFollowed: followed };
}

/** Max over min of a process's RSS samples after the warm-up. */
export function flatness(trace: MemoryTrace, role: "writer" | "reader"): number {
  const steady = (role === "writer" ? trace.writerMiB : trace.readerMiB).slice(trace.warmUpSamples);
  if (steady.length === 0) return 1;
  return Math.max(...steady) / Math.min(...steady);
}
