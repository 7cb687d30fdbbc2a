// What the bridge counts: records consumed, bad records by reason, commit latency and
// consumer lag per partition (sampled after each commit), on top of the storage
// requests every process counts.

import type { ServiceMetrics } from "@klstore/service-runtime";
import { Gauge, Histogram } from "prom-client";

export class BridgeMetrics {
  private readonly records;
  private readonly bad;
  private readonly commits: Histogram;
  private readonly lagGauge: Gauge<"topic" | "partition">;

  constructor(metrics: ServiceMetrics) {
    this.records = metrics.counter("klstore_bridge_records_total", "Kafka records consumed", ["topic"]);
    this.bad = metrics.counter("klstore_bridge_bad_records_total", "Records skipped or dead-lettered, by reason", [
      "reason",
    ]);
    this.commits = new Histogram({
      name: "klstore_bridge_commit_seconds",
      help: "Flush of the writer plus the offset commit",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [metrics.registry],
    });
    this.lagGauge = new Gauge({
      name: "klstore_bridge_consumer_lag",
      help: "Records behind the partition's end, per partition",
      labelNames: ["topic", "partition"],
      registers: [metrics.registry],
    });
  }

  consumed(topic: string): void {
    this.records.inc({ topic });
  }

  badRecord(reason: string): void {
    this.bad.inc({ reason });
  }

  committed(seconds: number): void {
    this.commits.observe(seconds);
  }

  /** Replaces the lag gauge with the partitions this member owns now. */
  lag(lags: readonly { topic: string; partition: number; lag: bigint }[]): void {
    this.lagGauge.reset();
    for (const { topic, partition, lag } of lags)
      this.lagGauge.set({ topic, partition: String(partition) }, Number(lag));
  }
}
