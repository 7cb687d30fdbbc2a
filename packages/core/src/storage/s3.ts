// S3 backend on @aws-sdk/client-s3. Integrity end to end: every PUT carries a CRC32C the
// server verifies before storing, every GET asks for the stored checksum and the SDK
// verifies the body against it (CRC32C in native code: crc32c.ts). Throttling and 5xx are
// retried by the SDK with backoff.

import { createRequire } from "node:module";
import type * as S3Sdk from "@aws-sdk/client-s3";
import type { S3Client, S3ClientConfig } from "@aws-sdk/client-s3";
import { StorageUnavailable } from "../errors.ts";
import { Crc32cChecksum } from "./crc32c.ts";
import {
  type ListOptions,
  type ListPage,
  type ObjectStore,
  PreconditionFailed,
  type PutOptions,
  type StoredObject,
} from "./object-store.ts";

/** The S3 settings of a config file's [s3] section (docs/operations.md). */
export interface S3StoreConfig {
  bucketName: string;
  objectPrefix: string;
  endpoint?: string | undefined;
  region: string;
  pathStyle: boolean;
  /** Use the SDK's default credential chain (environment, profile, instance role...). */
  useDefaultCredentials: boolean;
  accessKey?: string | undefined;
  secretKey?: string | undefined;
  /** STS session token; `security_token` is accepted as its older name. */
  sessionToken?: string | undefined;
  profile?: string | undefined;
  /** Attempts per request, including the first, for throttling, 5xx and network errors. */
  maxAttempts: number;
}

/**
 * The SDK, loaded when the first S3Store is made rather than with this module: whatever
 * imports @klstore/core (a CLI command on a file:// store, say) would otherwise spend most
 * of its start-up loading it. It is CommonJS, so `require` loads it synchronously, the
 * same instance an `import` gives.
 */
let sdk: typeof S3Sdk;
const require = createRequire(import.meta.url);

export const S3_DEFAULTS = {
  objectPrefix: "",
  region: "us-east-1",
  pathStyle: false,
  useDefaultCredentials: true,
  maxAttempts: 8,
} as const;

/**
 * PUT bodies are signed as UNSIGNED-PAYLOAD (a form every S3 accepts) instead of with their
 * SHA-256: the CRC32C each PUT carries already lets the server reject a corrupted body, and
 * hashing every byte a second time cost CPU on every bulk write. CRC32C is no defence against
 * a deliberate tamperer: untrusted networks need an https endpoint (docs/operations.md).
 */
export function signPutsWithoutPayloadHash(client: S3Client): void {
  client.middlewareStack.add(
    (next, context) => (args) => {
      const request = args.request as { headers?: Record<string, string> } | undefined;
      if (context.commandName === "PutObjectCommand" && request?.headers) {
        request.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
      }
      return next(args);
    },
    { step: "build", name: "klstoreUnsignedPayload" },
  );
}

const DELETE_BATCH = 1000;
/** Concurrent conditional writes to one key may answer 409; the loser of the race learns 412 on retry. */
const CONFLICT_RETRIES = 5;

export class S3Store implements ObjectStore {
  readonly description: string;
  private readonly client: S3Client;
  private readonly bucket: string;

  readonly config: S3StoreConfig;

  constructor(config: S3StoreConfig) {
    sdk ??= require("@aws-sdk/client-s3") as typeof S3Sdk;
    this.config = config;
    this.bucket = config.bucketName;
    this.description = `s3://${config.bucketName}/${config.objectPrefix}${config.endpoint ? ` at ${config.endpoint}` : ""}`;
    const clientConfig: S3ClientConfig = {
      region: config.region,
      forcePathStyle: config.pathStyle,
      maxAttempts: config.maxAttempts,
      retryMode: "adaptive",
      requestChecksumCalculation: "WHEN_SUPPORTED",
      responseChecksumValidation: "WHEN_SUPPORTED",
      checksumAlgorithms: { CRC32C: Crc32cChecksum },
    };
    if (config.endpoint) clientConfig.endpoint = config.endpoint;
    if (config.profile) clientConfig.profile = config.profile;
    if (!config.useDefaultCredentials) {
      if (!config.accessKey || !config.secretKey) {
        throw new StorageUnavailable("s3: use_default_credentials=false needs access_key and secret_key");
      }
      clientConfig.credentials = {
        accessKeyId: config.accessKey,
        secretAccessKey: config.secretKey,
        ...(config.sessionToken ? { sessionToken: config.sessionToken } : {}),
      };
    }
    this.client = new sdk.S3Client(clientConfig);
    signPutsWithoutPayloadHash(this.client);
  }

  async get(key: string): Promise<StoredObject | undefined> {
    try {
      const res = await this.client.send(
        new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: "ENABLED" }),
      );
      if (!res.Body) return { body: new Uint8Array(0) };
      return { body: await res.Body.transformToByteArray() };
    } catch (err) {
      if (statusOf(err) === 404 && (err as Error).name !== "NoSuchBucket") return undefined;
      throw this.unavailable("GET", key, err);
    }
  }

  async getRange(key: string, start: number, end?: number): Promise<StoredObject | undefined> {
    if (end !== undefined && end <= start) return { body: new Uint8Array(0) };
    try {
      // A ranged GET is checked by the caller (segment CRCs): S3 has no checksum of a range.
      const res = await this.client.send(
        new sdk.GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Range: `bytes=${start}-${end === undefined ? "" : end - 1}`,
        }),
      );
      if (!res.Body) return { body: new Uint8Array(0) };
      return { body: await res.Body.transformToByteArray() };
    } catch (err) {
      const status = statusOf(err);
      if (status === 404 && (err as Error).name !== "NoSuchBucket") return undefined;
      // A range past the end of the object: nothing of it is there.
      if (status === 416) return { body: new Uint8Array(0) };
      throw this.unavailable("GET", key, err);
    }
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    // Requests of this PUT that may have reached the server: the SDK's retries and ours.
    let sent = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.send(
          new sdk.PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: body,
            ContentLength: body.byteLength,
            ChecksumAlgorithm: "CRC32C",
            ...(options?.ifNoneMatch ? { IfNoneMatch: "*" } : {}),
          }),
        );
        return;
      } catch (err) {
        sent += attemptsOf(err);
        const status = statusOf(err);
        if (status === 412) {
          if (sent > 1) return this.confirmOwnCreate(key, body);
          throw new PreconditionFailed(key);
        }
        if (status === 409 && options?.ifNoneMatch && attempt < CONFLICT_RETRIES) continue;
        throw this.unavailable("PUT", key, err);
      }
    }
  }

  /**
   * A create-only PUT answered 412 after more than one request of it was sent. The 412 may
   * answer a retry of our own: the first request stored the object and its response was
   * lost (a reset connection, a timeout). Treating that as "someone else was first" told a
   * client its stored append was not stored (issue 23). Only the object can tell: the same
   * bytes are ours (claims carry a per-commit id, so no other call writes the same bytes;
   * docs/fencing.md), other bytes are a lost race, and no answer leaves the outcome unknown.
   */
  private async confirmOwnCreate(key: string, body: Uint8Array): Promise<void> {
    let stored: StoredObject | undefined;
    try {
      stored = await this.get(key);
    } catch (err) {
      throw new StorageUnavailable(
        `s3 PUT of ${key}: outcome unknown (a retry met an existing object and reading it back failed: ${(err as Error).message})`,
        { cause: err },
      );
    }
    if (stored === undefined) {
      throw new StorageUnavailable(
        `s3 PUT of ${key}: outcome unknown (a retry met an existing object, and it is gone now)`,
      );
    }
    if (Buffer.compare(stored.body, body) !== 0) throw new PreconditionFailed(key);
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      try {
        const res = await this.client.send(
          new sdk.DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        const failed = (res.Errors ?? []).filter((e) => e.Code !== "NoSuchKey");
        if (failed.length > 0) {
          throw new StorageUnavailable(
            `s3 DELETE of ${failed[0]?.Key} failed: ${failed[0]?.Code} ${failed[0]?.Message}`,
          );
        }
      } catch (err) {
        if (err instanceof StorageUnavailable) throw err;
        throw this.unavailable("DELETE", batch[0] ?? "", err);
      }
    }
  }

  async list(prefix: string, options?: ListOptions): Promise<ListPage> {
    try {
      const res = await this.client.send(
        new sdk.ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix,
          ...(options?.startAfter !== undefined ? { StartAfter: options.startAfter } : {}),
          ...(options?.maxKeys !== undefined ? { MaxKeys: options.maxKeys } : {}),
        }),
      );
      return {
        objects: (res.Contents ?? []).map((o) => ({ key: o.Key ?? "", size: o.Size ?? 0 })),
        truncated: res.IsTruncated === true,
      };
    } catch (err) {
      throw this.unavailable("LIST", prefix, err);
    }
  }

  async listFolders(prefix: string): Promise<string[]> {
    const folders: string[] = [];
    let token: string | undefined;
    try {
      do {
        const res = await this.client.send(
          new sdk.ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            Delimiter: "/",
            ContinuationToken: token,
          }),
        );
        for (const p of res.CommonPrefixes ?? []) {
          if (p.Prefix) folders.push(p.Prefix.slice(prefix.length, -1));
        }
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw this.unavailable("LIST", prefix, err);
    }
    return folders.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private unavailable(action: string, key: string, err: unknown): StorageUnavailable {
    const detail =
      err instanceof sdk.S3ServiceException
        ? `${err.name} (HTTP ${statusOf(err)}): ${err.message}`
        : (err as Error).message;
    return new StorageUnavailable(`s3 ${action} of ${key} in bucket ${this.bucket} failed: ${detail}`, { cause: err });
  }
}

/** Requests the SDK sent for one command (1 when it did not retry). */
function attemptsOf(err: unknown): number {
  return (err as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1;
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}
