// What a writer shard counts, on top of the calls and storage requests every process
// counts (service-runtime/metrics.ts): appends, items, bytes, duplicates, batches,
// compactions, forwards, AppendSession requests in progress and the depth of the batching
// queue.

import type { AppendEngine, ItemOutcome, TrimOutcome } from "@klstore/core";
import type { ServiceMetrics } from "@klstore/service-runtime";
import { Gauge, Histogram } from "prom-client";

export class WriterMetrics {
  private readonly appends;
  private readonly items;
  private readonly bytes;
  private readonly duplicates;
  private readonly forwards;
  private readonly untrustedForwards;
  private readonly sessionRequests;
  private readonly batches;
  private readonly batchItems;
  private readonly compactions;
  private readonly trims;
  private readonly trimmedObjects;

  constructor(metrics: ServiceMetrics, writer: AppendEngine) {
    this.appends = metrics.counter(
      "klstore_appends_total",
      "Append requests served by this shard (sessions count each request)",
    );
    this.items = metrics.counter("klstore_appended_items_total", "Items stored (duplicates excluded)");
    this.bytes = metrics.counter("klstore_appended_bytes_total", "Value bytes of the items stored");
    this.duplicates = metrics.counter(
      "klstore_duplicate_items_total",
      "Items dropped because their nonce was already stored",
    );
    this.forwards = metrics.counter(
      "klstore_forwarded_requests_total",
      "Requests forwarded to the shard owning the key",
    );
    this.untrustedForwards = metrics.counter(
      "klstore_untrusted_forwarded_calls_total",
      "Calls marked as forwarded by a shard without proof of it (no or a wrong forwarding secret or peer certificate); routed like any client's call",
    );
    this.batches = metrics.counter("klstore_batches_total", "Batches committed, each one data object");
    this.compactions = metrics.counter(
      "klstore_compactions_total",
      "Compactions: a key's small objects merged into one",
    );
    this.trims = metrics.counter(
      "klstore_trims_total",
      "Keys trimmed, by source: a Trim call (api) or the retention sweep (retention)",
      ["source"],
    );
    this.trimmedObjects = metrics.counter("klstore_trimmed_objects_total", "Data objects deleted by trims, by source", [
      "source",
    ]);
    const registers = [metrics.registry];
    this.batchItems = new Histogram({
      name: "klstore_batch_items",
      help: "Items per committed batch (group commit at work when above the items per request)",
      buckets: [1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10_000, 100_000],
      registers,
    });
    this.sessionRequests = new Gauge({
      name: "klstore_session_requests",
      help: "AppendSession requests read and not yet settled (committed, failed, or dropped by a cancel before they started)",
      registers,
    });
    new Gauge({
      name: "klstore_writer_queue_items",
      help: "Items accepted and not yet durable",
      registers,
      collect() {
        this.set(writer.queued.items);
      },
    });
    new Gauge({
      name: "klstore_writer_queue_bytes",
      help: "Value bytes accepted and not yet durable",
      registers,
      collect() {
        this.set(writer.queued.bytes);
      },
    });
    new Gauge({
      name: "klstore_writer_compaction_cache_bytes",
      help: "Bytes of recently committed objects kept for their compaction (bounded by compaction_cache_bytes)",
      registers,
      collect() {
        this.set(writer.cacheBytes);
      },
    });
    writer.observer = {
      committed: (items) => {
        this.batches.inc();
        this.batchItems.observe(items);
      },
      compacted: () => this.compactions.inc(),
    };
  }

  appended(values: readonly { value: Uint8Array }[], outcomes: readonly ItemOutcome[]): void {
    this.appends.inc();
    let stored = 0;
    let bytes = 0;
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.kind !== "appended") continue;
      stored++;
      bytes += values[i]?.value.byteLength ?? 0;
    }
    this.items.inc(stored);
    this.bytes.inc(bytes);
    this.duplicates.inc(outcomes.length - stored);
  }

  trimmed(source: "api" | "retention", outcome: TrimOutcome): void {
    if (outcome.deletedObjects === 0) return;
    this.trims.inc({ source });
    this.trimmedObjects.inc({ source }, outcome.deletedObjects);
  }

  forwarded(): void {
    this.forwards.inc();
  }

  untrustedForwarding(): void {
    this.untrustedForwards.inc();
  }

  sessionRequestRead(): void {
    this.sessionRequests.inc();
  }

  sessionRequestSettled(): void {
    this.sessionRequests.dec();
  }
}
