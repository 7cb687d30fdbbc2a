// The storage backends integration tests run against: the filesystem always, and a real S3
// server (SeaweedFS, started by scripts/test.sh) when KLSTORE_TEST_S3_ENDPOINT is set.

import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { FilesystemStore } from "../src/storage/filesystem.ts";
import type { ObjectStore } from "../src/storage/object-store.ts";
import { S3Store } from "../src/storage/s3.ts";

export interface TestBackend {
  readonly name: string;
  /** A fresh, empty store and a prefix; cleanup removes it. */
  open(): Promise<{ store: ObjectStore; prefix: string; url: string; cleanup: () => Promise<void> }>;
}

export const fileBackend: TestBackend = {
  name: "filesystem",
  async open() {
    const dir = await mkdtemp(join(tmpdir(), "klstore-test-"));
    const store = new FilesystemStore(dir);
    return { store, prefix: "", url: `file://${dir}`, cleanup: () => rm(dir, { recursive: true, force: true }) };
  },
};

export const S3_ENDPOINT = process.env.KLSTORE_TEST_S3_ENDPOINT;
export const S3_ACCESS_KEY = process.env.KLSTORE_TEST_S3_ACCESS_KEY ?? "klstore";
export const S3_SECRET_KEY = process.env.KLSTORE_TEST_S3_SECRET_KEY ?? "klstore-secret";
export const S3_BUCKET = "klstore-test";

let bucketReady: Promise<void> | undefined;

/** Creates the shared test bucket once per process (idempotent). */
export function ensureBucket(): Promise<void> {
  bucketReady ??= createBucket();
  return bucketReady;
}

async function createBucket(): Promise<void> {
  const client = new S3Client({
    endpoint: S3_ENDPOINT,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: S3_BUCKET }));
  } catch (err) {
    const name = (err as Error).name;
    if (name !== "BucketAlreadyOwnedByYou" && name !== "BucketAlreadyExists") throw err;
  } finally {
    client.destroy();
  }
}

/** The test bucket under `prefix`, at the test S3 server or at `endpoint` (a proxy in front of it, say). */
export function testS3Store(prefix: string, endpoint = S3_ENDPOINT): S3Store {
  return new S3Store({
    bucketName: S3_BUCKET,
    objectPrefix: prefix,
    endpoint,
    region: "us-east-1",
    pathStyle: true,
    useDefaultCredentials: false,
    accessKey: S3_ACCESS_KEY,
    secretKey: S3_SECRET_KEY,
    maxAttempts: 3,
  });
}

export const s3Backend: TestBackend = {
  name: "s3",
  async open() {
    if (!S3_ENDPOINT) throw new Error("KLSTORE_TEST_S3_ENDPOINT is not set");
    await ensureBucket();
    // Every test gets its own prefix in one shared bucket.
    const prefix = `t-${randomUUID()}/`;
    const store = testS3Store(prefix);
    const url = `s3://${S3_BUCKET}/${prefix}?endpoint=${encodeURIComponent(S3_ENDPOINT)}&path_style=true&access_key=${S3_ACCESS_KEY}&secret_key=${S3_SECRET_KEY}`;
    return { store, prefix, url, cleanup: () => store.close() };
  },
};

/** Backends to run against; S3 is required when CI=true, so a missing server fails loudly. */
export function backends(): TestBackend[] {
  if (S3_ENDPOINT) return [fileBackend, s3Backend];
  if (process.env.CI === "true") throw new Error("CI needs a real S3: run the tests through scripts/test.sh");
  return [fileBackend];
}
