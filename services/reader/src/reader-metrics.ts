// What a reader counts, on top of the calls and storage requests every process counts
// (service-runtime/metrics.ts): pages and items served, followers, shared follow polls and
// the object cache.

import type { ServiceMetrics } from "@klstore/service-runtime";
import { Counter, Gauge } from "prom-client";
import type { FollowHub } from "./follow-hub.ts";
import type { ObjectCacheStats } from "./object-cache.ts";
import type { WatchHub } from "./watch-hub.ts";

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

  constructor(metrics: ServiceMetrics, hub: FollowHub, cache: ObjectCacheStats, watchHub: WatchHub) {
    this.watchers = new Gauge({
      name: "klstore_watchers",
      help: "WatchKeyspace calls open right now",
      registers: [metrics.registry],
    });
    this.changes = metrics.counter("klstore_changes_served_total", "Key changes sent to watchers");
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
