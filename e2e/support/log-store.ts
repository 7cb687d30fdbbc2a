// The test bucket as the processes see it, for checks made beside them (a reader without
// the log, the logs' segments).

import { S3Store } from "../../packages/core/src/storage/s3.ts";
import { S3_ACCESS_KEY, S3_BUCKET, S3_ENDPOINT, S3_SECRET_KEY } from "./processes.ts";

export function openTestStore(prefix: string): { store: S3Store; prefix: string; close: () => Promise<void> } {
  const store = new S3Store({
    bucketName: S3_BUCKET,
    objectPrefix: prefix,
    endpoint: S3_ENDPOINT,
    region: "us-east-1",
    pathStyle: true,
    useDefaultCredentials: false,
    accessKey: S3_ACCESS_KEY,
    secretKey: S3_SECRET_KEY,
    maxAttempts: 3,
  });
  return { store, prefix, close: () => store.close() };
}
