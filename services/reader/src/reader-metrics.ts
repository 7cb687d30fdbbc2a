// What a reader counts, on top of the calls and storage requests every process counts
// (service-runtime/metrics.ts): pages and items served, followers, shared follow polls, the
// object cache, and the streams' limits (open streams, refusals, buffered bytes).

import type { ServiceMetrics } from "@klstore/service-runtime";
import { Counter, Gauge } from "prom-client";
import type { FollowHub } from "./follow-hub.ts";
import type { ObjectCacheStats } from "./object-cache.ts";
import type { StreamAdmission } from "./stream-admission.ts";
import type { StreamBufferPool } from "./stream-buffers.ts";
import type { AnyWatchFeed } from "./watch-feed.ts";

/** What the reader's metrics read from. */
export interface ReaderMetricSources {
  readonly hub: FollowHub;
  readonly cache: ObjectCacheStats;
  readonly watchHub: AnyWatchFeed;
  readonly admission: StreamAdmission;
  readonly streamBuffers: StreamBufferPool;
}

/** A counter that mirrors a number some component already counts. */
function mirroredCounter(metrics: ServiceMetrics, name: string, help: string, read: () => number): void {
  let seen = 0;
  new Counter({
    name,
    help,
    registers: [metrics.registry],
    collect() {
      const now = read();
      this.inc(now - seen);
      seen = now;
    },
  });
}

export class ReaderMetrics {
  private readonly pages;
  private readonly items;
  private readonly followers;
  private readonly watchers;
  private readonly changes;
  private readonly stalls;

  constructor(metrics: ServiceMetrics, sources: ReaderMetricSources) {
    const { hub, cache, watchHub, admission, streamBuffers } = sources;
    this.watchers = new Gauge({
      name: "klstore_watchers",
      help: "WatchKeyspace calls open right now",
      registers: [metrics.registry],
    });
    this.changes = metrics.counter("klstore_changes_served_total", "Key changes sent to watchers");
    this.stalls = metrics.counter(
      "klstore_stream_stalls_total",
      "ReadStream pages whose client took nothing for stream_stall_millis (copied, their stored object let go)",
    );
    mirroredCounter(
      metrics,
      "klstore_watch_polls_total",
      "Change-log LISTs made for watchers (shared per keyspace)",
      () => watchHub.polls,
    );
    mirroredCounter(
      metrics,
      "klstore_watch_objects_read_total",
      "Change objects read for watchers (each once, shared)",
      () => watchHub.objectsRead,
    );
    this.pages = metrics.counter(
      "klstore_pages_served_total",
      "Pages served (ReadPage answers and ReadStream messages)",
      ["call"],
    );
    this.items = metrics.counter("klstore_items_served_total", "Items served", ["call"]);
    this.followers = new Gauge({
      name: "klstore_followers",
      help: "ReadStream calls following a key right now",
      registers: [metrics.registry],
    });
    mirroredCounter(
      metrics,
      "klstore_follow_polls_total",
      "Storage polls made for followers (shared per key)",
      () => hub.polls,
    );
    mirroredCounter(
      metrics,
      "klstore_object_cache_hits_total",
      "Data object reads served from memory",
      () => cache.hits,
    );
    mirroredCounter(
      metrics,
      "klstore_object_cache_misses_total",
      "Data object reads that went to storage",
      () => cache.misses,
    );
    new Gauge({
      name: "klstore_streams",
      help: "ReadStream and WatchKeyspace calls open right now (bounded by max_streams)",
      registers: [metrics.registry],
      collect() {
        this.set(admission.open);
      },
    });
    const refusals = { max_streams_per_connection: 0, max_streams: 0, total_stream_buffer_bytes: 0 };
    new Counter({
      name: "klstore_streams_refused_total",
      help: "Streams refused RESOURCE_EXHAUSTED, by the limit (config key) that refused them",
      labelNames: ["limit"],
      registers: [metrics.registry],
      collect() {
        const now = {
          max_streams_per_connection: admission.refused.connection,
          max_streams: admission.refused.process,
          total_stream_buffer_bytes: streamBuffers.refused,
        };
        for (const limit of Object.keys(now) as (keyof typeof now)[]) {
          this.inc({ limit }, now[limit] - refusals[limit]);
          refusals[limit] = now[limit];
        }
      },
    });
    new Gauge({
      name: "klstore_stream_buffer_bytes",
      help: "Bytes of pages ReadStreams hold that their clients have not taken (bounded by total_stream_buffer_bytes)",
      registers: [metrics.registry],
      collect() {
        this.set(streamBuffers.used);
      },
    });
    mirroredCounter(
      metrics,
      "klstore_stream_buffer_waits_total",
      "Page reads that waited for other streams' clients to take theirs (total_stream_buffer_bytes reached)",
      () => streamBuffers.waits,
    );
    new Gauge({
      name: "klstore_object_cache_bytes",
      help: "Data object bytes the reader's cache holds (bounded by object_cache_bytes)",
      registers: [metrics.registry],
      collect() {
        this.set(cache.bytes);
      },
    });
  }

  pageServed(call: "read_page" | "read_stream", items: number): void {
    this.pages.inc({ call });
    this.items.inc({ call }, items);
  }

  streamStalled(): void {
    this.stalls.inc();
  }

  changesServed(count: number): void {
    this.changes.inc(count);
  }

  /** Counts a watcher until the returned function is called. */
  watching(): () => void {
    this.watchers.inc();
    let done = false;
    return () => {
      if (!done) this.watchers.dec();
      done = true;
    };
  }

  /** Counts a follower until the returned function is called. */
  following(): () => void {
    this.followers.inc();
    let done = false;
    return () => {
      if (!done) this.followers.dec();
      done = true;
    };
  }
}
