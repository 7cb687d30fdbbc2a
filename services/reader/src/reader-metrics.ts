// What a reader counts, on top of the calls and storage requests every process counts
// (service-runtime/metrics.ts): pages and items served, followers, shared follow polls and
// the object cache.

import type { ServiceMetrics } from "@klstore/service-runtime";
import { Counter, Gauge } from "prom-client";
import type { FollowHub } from "./follow-hub.ts";
import type { ObjectCacheStats } from "./object-cache.ts";

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

  constructor(metrics: ServiceMetrics, hub: FollowHub, cache: ObjectCacheStats) {
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
  }

  pageServed(call: "read_page" | "read_stream", items: number): void {
    this.pages.inc({ call });
    this.items.inc({ call }, items);
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
