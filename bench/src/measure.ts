// Throughput and latency measurement shared by every scenario.

import { type CpuUse, cpuSince, cpuSnapshot } from "./cpu.ts";

export interface Throughput {
  readonly system: string;
  readonly items: number;
  readonly bytes: number;
  readonly seconds: number;
  readonly itemsPerSecond: number;
  readonly megabytesPerSecond: number;
  /** CPU-seconds by process role over the run (cpu.ts), when it was measured in this process. */
  readonly cpu?: CpuUse;
}

export async function throughput(
  system: string,
  items: number,
  bytes: number,
  run: () => Promise<void>,
): Promise<Throughput> {
  const cpuBefore = cpuSnapshot();
  const started = process.hrtime.bigint();
  await run();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return {
    system,
    items,
    bytes,
    seconds,
    itemsPerSecond: items / seconds,
    megabytesPerSecond: bytes / seconds / 1e6,
    cpu: cpuSince(cpuBefore),
  };
}

/** Runs `task(i)` for i in 0..count-1 with at most `concurrency` at once. */
export async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

/** A value of `size` bytes, distinct per item so no layer can deduplicate it. */
export function payload(size: number, i: number): Buffer {
  const b = Buffer.alloc(size, 0x61 + (i % 26));
  b.writeUInt32BE(i >>> 0, 0);
  return b;
}
