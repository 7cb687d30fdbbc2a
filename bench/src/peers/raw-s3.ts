// The physical ceiling: PutObject and GetObject of 1 MiB objects of the same bytes to the
// same S3 server, from Node, with the same SDK klstore uses.

import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { signPutsWithoutPayloadHash } from "@klstore/core";
import { S3_ACCESS_KEY, S3_BUCKET, S3_ENDPOINT, S3_SECRET_KEY } from "../../../e2e/support/processes.ts";
import { pool, type Throughput, throughput } from "../measure.ts";

export interface S3Target {
  readonly endpoint: string;
  readonly bucket: string;
  readonly accessKey: string;
  readonly secretKey: string;
}

/** The test services' S3 server (scripts/services.sh), which every scenario writes to. */
export function testS3Target(): S3Target {
  if (!S3_ENDPOINT) throw new Error("needs KLSTORE_TEST_S3_ENDPOINT (scripts/services.sh start s3)");
  return { endpoint: S3_ENDPOINT, bucket: S3_BUCKET, accessKey: S3_ACCESS_KEY, secretKey: S3_SECRET_KEY };
}

const OBJECT_BYTES = 1024 * 1024;

/** Signed as klstore signs its PUTs (no SHA-256 pass over the body), so the ceiling stays a ceiling. */
function client(target: S3Target): S3Client {
  const s3 = new S3Client({
    endpoint: target.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: target.accessKey, secretAccessKey: target.secretKey },
  });
  signPutsWithoutPayloadHash(s3);
  return s3;
}

/** Writes `bytes` as 1 MiB objects, 8 at a time; returns the keys for the read ceiling. */
export async function rawPut(
  target: S3Target,
  prefix: string,
  items: number,
  bytes: number,
): Promise<{ result: Throughput; keys: string[] }> {
  const s3 = client(target);
  const count = Math.max(1, Math.ceil(bytes / OBJECT_BYTES));
  const body = Buffer.alloc(Math.min(bytes, OBJECT_BYTES), 0x62);
  const keys = Array.from({ length: count }, (_, i) => `${prefix}raw/${i}`);
  const result = await throughput("raw S3 PutObject (1 MiB objects)", items, bytes, () =>
    pool(count, 8, async (i) => {
      await s3.send(new PutObjectCommand({ Bucket: target.bucket, Key: keys[i], Body: body }));
    }),
  );
  s3.destroy();
  return { result, keys };
}

export async function rawGet(
  target: S3Target,
  keys: readonly string[],
  items: number,
  bytes: number,
): Promise<Throughput> {
  const s3 = client(target);
  const result = await throughput("raw S3 GetObject (1 MiB objects)", items, bytes, () =>
    pool(keys.length, 8, async (i) => {
      const res = await s3.send(new GetObjectCommand({ Bucket: target.bucket, Key: keys[i] }));
      await res.Body?.transformToByteArray();
    }),
  );
  s3.destroy();
  return result;
}
