// Seek cost as a key grows: the storage requests and time one seek (by offset, timestamp or
// nonce, to a random position) takes at 10^3 ... 10^6 items, through the engine's reader
// on the same S3 server, beside the target of 2*log2(objects)+2 requests.

import { countingStore, type ObjectStore, S3Store, StorageStats, StoreReader, StoreWriter } from "@klstore/core";
import type { S3Target } from "../peers/raw-s3.ts";

export interface SeekRow {
  readonly items: number;
  readonly objects: number;
  readonly bound: number;
  readonly by: "offset" | "timestamp" | "nonce";
  readonly meanRequests: number;
  readonly maxRequests: number;
  readonly meanMillis: number;
}

const VALUE = Buffer.alloc(64, 0x73);
const APPEND_BATCH = 10_000;
const SEEKS = 20;

async function countObjects(store: ObjectStore, folder: string): Promise<number> {
  let n = 0;
  let startAfter: string | undefined;
  for (;;) {
    const page = await store.list(folder, { startAfter, maxKeys: 1000 });
    n += page.objects.filter((o) => o.key.includes("/data_")).length;
    if (!page.truncated || page.objects.length === 0) return n;
    startAfter = page.objects.at(-1)?.key;
  }
}

export async function seekCosts(target: S3Target, prefix: string, sizes: readonly number[]): Promise<SeekRow[]> {
  const store = new S3Store({
    bucketName: target.bucket,
    objectPrefix: prefix,
    endpoint: target.endpoint,
    region: "us-east-1",
    pathStyle: true,
    useDefaultCredentials: false,
    accessKey: target.accessKey,
    secretKey: target.secretKey,
    maxAttempts: 8,
  });
  const writer = new StoreWriter({ store, prefix });
  await writer.createKeyspace("seek");
  const rows: SeekRow[] = [];
  let written = 0;
  try {
    for (const size of sizes) {
      while (written < size) {
        const n = Math.min(APPEND_BATCH, size - written);
        await writer.appendList(
          "seek",
          "k",
          Array.from({ length: n }, (_, i) => ({
            value: VALUE,
            nonce: BigInt(written + i),
            timestamp: 1_700_000_000_000n + BigInt(written + i),
          })),
        );
        written += n;
      }
      const objects = await countObjects(store, `${prefix}seek/k/`);
      const bound = 2 * Math.log2(Math.max(objects, 1)) + 2;
      for (const by of ["offset", "timestamp", "nonce"] as const) {
        let total = 0;
        let max = 0;
        let millis = 0;
        for (let s = 0; s < SEEKS; s++) {
          const at = BigInt(Math.floor(Math.random() * size));
          const stats = new StorageStats();
          const reader = new StoreReader({ store: countingStore(store, stats), prefix });
          const started = performance.now();
          const filter =
            by === "offset"
              ? { startOffset: at }
              : by === "timestamp"
                ? { startTimestamp: 1_700_000_000_000n + at }
                : { startNonce: at };
          const page = await reader.readPage("seek", "k", { maxSize: 1, filter });
          millis += performance.now() - started;
          if (page.items[0]?.offset !== at)
            throw new Error(`seek by ${by} to ${at} landed on ${page.items[0]?.offset}`);
          const requests = stats.listRequests + stats.getRequests;
          total += requests;
          max = Math.max(max, requests);
        }
        rows.push({
          items: size,
          objects,
          bound,
          by,
          meanRequests: total / SEEKS,
          maxRequests: max,
          meanMillis: millis / SEEKS,
        });
      }
    }
  } finally {
    await writer.close();
    await store.close();
  }
  return rows;
}
