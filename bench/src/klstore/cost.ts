// What an ingest cost in storage: requests by operation and bytes written, from the writer
// process's own Prometheus counters (before and after), and bytes left stored, by listing
// the keyspace's objects.

import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { scrape } from "../../../e2e/support/processes.ts";
import type { S3Target } from "../peers/raw-s3.ts";

export interface StorageCounters {
  readonly put: number;
  readonly get: number;
  readonly list: number;
  readonly delete: number;
  readonly bytesWritten: number;
}

export async function storageCounters(metricsAddress: string): Promise<StorageCounters> {
  const requests = (operation: string) => scrape(metricsAddress, "klstore_storage_requests_total", { operation });
  return {
    put: await requests("put"),
    get: await requests("get"),
    list: await requests("list"),
    delete: await requests("delete"),
    bytesWritten: await scrape(metricsAddress, "klstore_storage_bytes_total", { direction: "written" }),
  };
}

export function difference(after: StorageCounters, before: StorageCounters): StorageCounters {
  return {
    put: after.put - before.put,
    get: after.get - before.get,
    list: after.list - before.list,
    delete: after.delete - before.delete,
    bytesWritten: after.bytesWritten - before.bytesWritten,
  };
}

/** Bytes of every object under `prefix`. */
export async function storedBytes(target: S3Target, prefix: string): Promise<number> {
  const s3 = new S3Client({
    endpoint: target.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: target.accessKey, secretAccessKey: target.secretKey },
  });
  let total = 0;
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: target.bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) total += o.Size ?? 0;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  s3.destroy();
  return total;
}
