// The TypeScript client. Appends go straight to the shard that owns the key (the same
// rendezvous hash the shards use; `discover` learns the shard list from one shard), reads
// go to any reader, and `items()` is an async
// iterator over a ReadStream that resumes from its last continuation if the stream breaks.
// Retries happen only where they are safe: nothing stored (ABORTED, RESOURCE_EXHAUSTED),
// or every insertion carries a nonce (a resend is deduplicated).

import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import {
  type CallOptions,
  type ChannelCredentials,
  Client,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import {
  AckMode,
  AppendRequestSchema,
  CHANNEL_OPTIONS,
  Compression,
  CreateKeyspaceRequestSchema,
  callServerStream,
  callUnary,
  FlushAllRequestSchema,
  FlushKeyRequestSchema,
  fromUint128,
  GetKeyMetadataRequestSchema,
  GetKeyspaceMetadataRequestSchema,
  GetShardsRequestSchema,
  ItemFilterSchema,
  type Item as ItemMessage,
  type KeyChange as KeyChangeMessage,
  Order,
  packInsertions,
  ReaderService,
  ReadPageRequestSchema,
  ReadStreamRequestSchema,
  RetentionSchema,
  SetRetentionRequestSchema,
  TrimRequestSchema,
  toUint128,
  unpackItems,
  unpackOutcomes,
  WatchKeyspaceRequestSchema,
  WriterService,
} from "@klstore/proto";
import { parseShardList, type Shard, ShardRing } from "@klstore/sharding";

export interface ClientInsertion {
  readonly value: Uint8Array | string;
  readonly nonce?: bigint | undefined;
  /** ms since the epoch; unset takes the writer's clock. */
  readonly timestamp?: bigint | undefined;
}

export type AppendOutcome =
  | { readonly kind: "appended"; readonly offset: bigint; readonly timestamp: bigint }
  | { readonly kind: "duplicate" };

export interface ClientItem {
  readonly offset: bigint;
  readonly timestamp: bigint;
  readonly nonce: bigint | undefined;
  readonly value: Uint8Array;
}

/** How long a keyspace keeps items; an unset rule does not limit. */
export interface ClientRetention {
  readonly maxAgeMillis?: bigint | undefined;
  readonly maxItems?: bigint | undefined;
}

/** A key received items: its list now ends just below `nextOffset`. */
export interface ClientKeyChange {
  readonly key: string;
  readonly nextOffset: bigint;
  readonly nextNonce: bigint;
  readonly commitMillis: bigint;
}

export interface ReadOptions {
  readonly order?: "forwards" | "backwards";
  readonly startOffset?: bigint;
  readonly startTimestamp?: bigint;
  readonly startNonce?: bigint;
  readonly continuation?: string;
}

export interface KlstoreClientOptions {
  /**
   * Writer shards: a list, or "name=host:port,..." as the shards are configured. With a
   * single bare host:port the client sends everything there and that shard forwards; use
   * KlstoreClient.discover to learn the list from it instead.
   */
  readonly writers: readonly Shard[] | string;
  /** host:port of a reader (or a load balancer in front of readers). */
  readonly reader: string;
  readonly credentials?: ChannelCredentials;
  /** Deadline of each call, ms. */
  readonly deadlineMillis?: number;
  /** Attempts of a call that may be retried. */
  readonly maxAttempts?: number;
}

/** Every writer shard as one shard is configured (GetShards), and that shard's name. */
export interface ShardList {
  readonly shards: Shard[];
  readonly thisShard: string;
}

const RETRY_BASE_MILLIS = 50;
const DEFAULT_DEADLINE_MILLIS = 30_000;
/** The shard that owns the key, by the client's shard list. */
export const ROUTING_SHARD_HEADER = "klstore-shard";
/** keyspace/key, percent-encoded; hash on it for key affinity without knowing the shards. */
export const ROUTING_KEY_HEADER = "klstore-routing-key";

export class KlstoreClient {
  readonly ring: ShardRing;
  private readonly writers = new Map<string, Client>();
  private readonly reader: Client;
  private readonly deadlineMillis: number;
  private readonly maxAttempts: number;

  constructor(options: KlstoreClientOptions) {
    const shards = typeof options.writers === "string" ? parseShardList(options.writers) : options.writers;
    this.ring = new ShardRing(shards);
    const creds = options.credentials ?? credentials.createInsecure();
    for (const shard of shards) this.writers.set(shard.name, new Client(shard.address, creds, CHANNEL_OPTIONS));
    this.reader = new Client(options.reader, creds, CHANNEL_OPTIONS);
    this.deadlineMillis = options.deadlineMillis ?? DEFAULT_DEADLINE_MILLIS;
    this.maxAttempts = options.maxAttempts ?? 5;
  }

  /**
   * A client that learns the shard list from the writer shard at `writer` (host:port;
   * GetShards), so that it routes every append to its owner from one address. Rejects with
   * the call's status if that shard cannot answer (UNIMPLEMENTED before GetShards existed).
   */
  static async discover(options: Omit<KlstoreClientOptions, "writers"> & { readonly writer: string }) {
    const seed = new Client(options.writer, options.credentials ?? credentials.createInsecure(), CHANNEL_OPTIONS);
    try {
      const deadline = Date.now() + (options.deadlineMillis ?? DEFAULT_DEADLINE_MILLIS);
      const { shards } = await getShards(seed, { deadline });
      return new KlstoreClient({ ...options, writers: shards });
    } finally {
      seed.close();
    }
  }

  /** The shard list as the first writer shard of this client's list is configured. */
  shards(): Promise<ShardList> {
    return getShards(this.anyWriter(), this.options());
  }

  private options(): CallOptions {
    return { deadline: Date.now() + this.deadlineMillis };
  }

  /**
   * Headers a mesh can route on (docs/operations.md): the owning shard's name, and the
   * key itself for consistent hashing (percent-encoded: header values are ASCII).
   */
  private routing(keyspace: string, key: string): Metadata {
    const metadata = new Metadata();
    metadata.set(ROUTING_SHARD_HEADER, this.ring.ownerOf(keyspace, key).name);
    metadata.set(ROUTING_KEY_HEADER, `${encodeURIComponent(keyspace)}/${encodeURIComponent(key)}`);
    return metadata;
  }

  private writerFor(keyspace: string, key: string): Client {
    return this.writers.get(this.ring.ownerOf(keyspace, key).name) as Client;
  }

  /** Retries `call` while `retryable(err)` says a repeat is safe, with jittered backoff. */
  private async retrying<T>(call: () => Promise<T>, retryable: (err: ServiceError) => boolean): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (err) {
        if (attempt >= this.maxAttempts || !retryable(err as ServiceError)) throw err;
        await sleep(RETRY_BASE_MILLIS * 2 ** (attempt - 1) * (0.5 + Math.random()));
      }
    }
  }

  async createKeyspace(
    keyspace: string,
    options: { compression?: "none" | "zstd"; retention?: ClientRetention | undefined } = {},
  ) {
    const compression = options.compression === "zstd" ? Compression.ZSTD : Compression.NONE;
    const res = await callUnary(
      this.anyWriter(),
      WriterService,
      "createKeyspace",
      create(CreateKeyspaceRequestSchema, { keyspace, compression, retention: retentionOf(options.retention) }),
      this.options(),
    );
    return res.keyspace;
  }

  /** Replaces a keyspace's retention; undefined keeps every item. */
  async setRetention(keyspace: string, retention: ClientRetention | undefined) {
    const req = create(SetRetentionRequestSchema, { keyspace, retention: retentionOf(retention) });
    return (await callUnary(this.anyWriter(), WriterService, "setRetention", req, this.options())).keyspace;
  }

  /** Removes a key's items below `beforeOffset`; resolves with the key's first available offset. */
  async trim(keyspace: string, key: string, beforeOffset: bigint): Promise<bigint> {
    const req = create(TrimRequestSchema, { keyspace, key, beforeOffset });
    const res = await this.retrying(
      () =>
        callUnary(
          this.writerFor(keyspace, key),
          WriterService,
          "trim",
          req,
          this.options(),
          this.routing(keyspace, key),
        ),
      // A trim is idempotent: repeating one whose answer was lost changes nothing more.
      (err) => err.code === status.ABORTED || err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED,
    );
    return res.firstOffset;
  }

  /**
   * Every change of the keyspace's keys from now (or from `cursor`) until `signal` aborts,
   * one batch per message with the cursor that resumes after it. The first batch has no
   * changes and the starting cursor, so a watch from now has a resume point at once;
   * heartbeats have none either. A broken stream is resumed from the last cursor, so no
   * change is lost or repeated.
   */
  async *watch(
    keyspace: string,
    options: { cursor?: string | undefined; signal?: AbortSignal } = {},
  ): AsyncGenerator<{ changes: ClientKeyChange[]; cursor: string }> {
    let cursor = options.cursor ?? "";
    let failures = 0;
    for (;;) {
      const req = create(WatchKeyspaceRequestSchema, { keyspace, cursor });
      const stream = callServerStream(this.reader, ReaderService, "watchKeyspace", req, {});
      const cancel = () => stream.cancel();
      options.signal?.addEventListener("abort", cancel, { once: true });
      let first = true;
      try {
        for await (const message of stream) {
          // Every stream opens with a message; only a later one shows the reader is serving.
          if (!first) failures = 0;
          first = false;
          cursor = message.cursor;
          yield {
            changes: message.changes.map((c: KeyChangeMessage) => ({
              key: c.key,
              nextOffset: c.nextOffset,
              nextNonce: fromUint128(c.nextNonce) ?? 0n,
              commitMillis: c.commitTimeMillis,
            })),
            cursor,
          };
        }
        return;
      } catch (err) {
        if (options.signal?.aborted) return;
        if ((err as ServiceError).code !== status.UNAVAILABLE || ++failures >= this.maxAttempts) throw err;
        await sleep(RETRY_BASE_MILLIS * 2 ** failures);
      } finally {
        options.signal?.removeEventListener("abort", cancel);
        stream.cancel();
      }
    }
  }

  private anyWriter(): Client {
    return this.writers.values().next().value as Client;
  }

  /** Appends to one key; resolves once durable with each insertion's outcome. */
  async append(
    keyspace: string,
    key: string,
    insertions: readonly ClientInsertion[],
    options: { acceptedOnly?: boolean } = {},
  ): Promise<AppendOutcome[]> {
    const request = create(AppendRequestSchema, {
      keyspace,
      key,
      ackMode: options.acceptedOnly ? AckMode.ACCEPTED : AckMode.DURABLE,
      // Packed: no message per item to build and encode here, nor to decode at the writer.
      packedInsertions: packInsertions(
        insertions.map((i) => ({
          value: typeof i.value === "string" ? Buffer.from(i.value) : i.value,
          nonce: i.nonce,
          timestamp: i.timestamp,
        })),
      ),
    });
    const allNonced = insertions.every((i) => i.nonce !== undefined);
    const res = await this.retrying(
      () =>
        callUnary(
          this.writerFor(keyspace, key),
          WriterService,
          "append",
          request,
          this.options(),
          this.routing(keyspace, key),
        ),
      (err) =>
        err.code === status.ABORTED ||
        err.code === status.RESOURCE_EXHAUSTED ||
        (allNonced && (err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED)),
    );
    return unpackOutcomes(res.packedOutcomes).map((o) =>
      o ? { kind: "appended", offset: o.offset, timestamp: o.timestamp } : { kind: "duplicate" },
    );
  }

  async flushKey(keyspace: string, key: string): Promise<void> {
    const request = create(FlushKeyRequestSchema, { keyspace, key });
    const writer = this.writerFor(keyspace, key);
    await callUnary(writer, WriterService, "flushKey", request, this.options(), this.routing(keyspace, key));
  }

  /** Flushes every shard. */
  async flushAll(): Promise<void> {
    await Promise.all(
      [...this.writers.values()].map((w) =>
        callUnary(w, WriterService, "flushAll", create(FlushAllRequestSchema), this.options()),
      ),
    );
  }

  async keyspaceMetadata(keyspace: string) {
    const req = create(GetKeyspaceMetadataRequestSchema, { keyspace });
    return (await callUnary(this.reader, ReaderService, "getKeyspaceMetadata", req, this.options())).keyspace;
  }

  /** Undefined when the key holds no items. */
  async keyMetadata(keyspace: string, key: string) {
    const req = create(GetKeyMetadataRequestSchema, { keyspace, key });
    const meta = (await callUnary(this.reader, ReaderService, "getKeyMetadata", req, this.options())).metadata;
    return meta ? { ...meta, nextNonce: fromUint128(meta.nextNonce) ?? 0n } : undefined;
  }

  async readPage(keyspace: string, key: string, options: ReadOptions & { maxItems?: number } = {}) {
    const req = create(ReadPageRequestSchema, {
      keyspace,
      key,
      order: options.order === "backwards" ? Order.BACKWARDS : Order.FORWARDS,
      maxItems: options.maxItems ?? 0,
      filter: filterOf(options),
      continuation: options.continuation ?? "",
      packed: true,
    });
    const res = await this.retrying(
      () => callUnary(this.reader, ReaderService, "readPage", req, this.options()),
      (err) => err.code === status.UNAVAILABLE,
    );
    return { items: itemsOf(res, req.order), continuation: res.continuation || undefined, stats: res.stats };
  }

  /**
   * Every item from the start position on; with `follow`, then new items as they are
   * committed, until `signal` aborts. A broken stream is resumed from where it stopped.
   */
  async *items(
    keyspace: string,
    key: string,
    options: ReadOptions & { follow?: boolean; pageSize?: number; limit?: bigint; signal?: AbortSignal } = {},
  ): AsyncGenerator<ClientItem> {
    let continuation = options.continuation;
    let remaining = options.limit;
    let failures = 0;
    for (;;) {
      const req = create(ReadStreamRequestSchema, {
        keyspace,
        key,
        order: options.order === "backwards" ? Order.BACKWARDS : Order.FORWARDS,
        filter: continuation ? undefined : filterOf(options),
        continuation: continuation ?? "",
        pageSize: options.pageSize ?? 0,
        limit: remaining ?? 0n,
        follow: options.follow ?? false,
        packed: true,
      });
      const stream = callServerStream(this.reader, ReaderService, "readStream", req, {});
      const cancel = () => stream.cancel();
      options.signal?.addEventListener("abort", cancel, { once: true });
      try {
        for await (const message of stream) {
          failures = 0;
          const items = itemsOf(message, req.order);
          for (const item of items) yield item;
          continuation = message.continuation || continuation;
          if (remaining !== undefined) remaining -= BigInt(items.length);
        }
        return;
      } catch (err) {
        if (options.signal?.aborted) return;
        const code = (err as ServiceError).code;
        if (code !== status.UNAVAILABLE || ++failures >= this.maxAttempts) throw err;
        await sleep(RETRY_BASE_MILLIS * 2 ** failures);
      } finally {
        options.signal?.removeEventListener("abort", cancel);
        stream.cancel();
      }
    }
  }

  close(): void {
    for (const w of this.writers.values()) w.close();
    this.reader.close();
  }
}

async function getShards(writer: Client, options: CallOptions): Promise<ShardList> {
  const res = await callUnary(writer, WriterService, "getShards", create(GetShardsRequestSchema), options);
  return { shards: res.shards.map((s) => ({ name: s.name, address: s.address })), thisShard: res.thisShard };
}

function retentionOf(retention: ClientRetention | undefined) {
  return retention ? create(RetentionSchema, retention) : undefined;
}

function filterOf(options: ReadOptions) {
  if (options.startOffset === undefined && options.startTimestamp === undefined && options.startNonce === undefined) {
    return undefined;
  }
  return create(ItemFilterSchema, {
    startOffset: options.startOffset,
    startTimestampMillis: options.startTimestamp,
    startNonce: toUint128(options.startNonce),
  });
}

/** A page's items in the order read, whichever form the reader sent (this client asks for packed). */
function itemsOf(message: { items: ItemMessage[]; packedItems: Uint8Array }, order: Order): ClientItem[] {
  if (message.packedItems.byteLength === 0) return message.items.map(toItem);
  const ascending = unpackItems(message.packedItems);
  return order === Order.BACKWARDS ? ascending.reverse() : ascending;
}

function toItem(m: ItemMessage): ClientItem {
  return { offset: m.offset, timestamp: m.timestampMillis, nonce: fromUint128(m.nonce), value: m.value };
}
