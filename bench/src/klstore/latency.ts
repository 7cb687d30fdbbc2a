// Append latency at fixed offered loads below saturation: first the saturation rate of
// single-item unary Appends (closed loop, 64 in flight), then open-loop runs at 10%, 50%
// and 80% of it. Latency is measured from each request's scheduled send time, so a stall
// counts against every request it delays (no coordinated omission).

import { setTimeout as sleep } from "node:timers/promises";
import { KlstoreClient } from "@klstore/client";
import type { Shard } from "@klstore/sharding";
import { payload } from "../measure.ts";

export interface LatencyRow {
  readonly load: string;
  readonly offeredPerSecond: number;
  readonly achievedPerSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number;
}

export async function appendLatency(
  shards: readonly Shard[],
  keyspace: string,
  seconds: number,
): Promise<LatencyRow[]> {
  const client = new KlstoreClient({ writers: shards, reader: "127.0.0.1:1" });
  const keys = 100;
  let n = 0;
  const appendOne = () => {
    const i = n++;
    return client.append(keyspace, `key-${i % keys}`, [{ value: payload(100, i) }]);
  };
  try {
    // Saturation: as many as 64 in flight, for `seconds`.
    const deadline = performance.now() + seconds * 1000;
    let done = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (performance.now() < deadline) {
          await appendOne();
          done++;
        }
      }),
    );
    const max = done / seconds;
    const rows: LatencyRow[] = [
      {
        load: "saturation (closed loop, 64 in flight)",
        offeredPerSecond: max,
        achievedPerSecond: max,
        p50: 0,
        p99: 0,
        p999: 0,
      },
    ];
    for (const fraction of [0.1, 0.5, 0.8]) {
      const rate = max * fraction;
      const total = Math.max(1, Math.floor(rate * seconds));
      const latencies: number[] = [];
      const start = performance.now();
      const inFlight: Promise<void>[] = [];
      for (let i = 0; i < total; i++) {
        const scheduled = start + (i * 1000) / rate;
        const wait = scheduled - performance.now();
        if (wait > 1) await sleep(wait);
        inFlight.push(appendOne().then(() => void latencies.push(performance.now() - scheduled)));
      }
      await Promise.all(inFlight);
      const elapsed = (performance.now() - start) / 1000;
      latencies.sort((a, b) => a - b);
      rows.push({
        load: `${Math.round(fraction * 100)}% of saturation`,
        offeredPerSecond: rate,
        achievedPerSecond: total / elapsed,
        p50: percentile(latencies, 0.5),
        p99: percentile(latencies, 0.99),
        p999: percentile(latencies, 0.999),
      });
    }
    return rows;
  } finally {
    client.close();
  }
}
