// What the CLI's commands need from klstore, whether they reach storage directly (direct.ts)
// or go through the services (remote.ts): the commands are written once against this.

import type { Insertion, Item, ItemOutcome, KeyChange, KeyMetadata, Retention } from "@klstore/core";

export interface KeyspaceInfo {
  readonly keyspace: string;
  readonly createdMillis: bigint;
  readonly compression: "none" | "zstd";
  readonly retention?: Retention | undefined;
}

/**
 * One batch of a keyspace's changes and the cursor that resumes after it; a watch's first
 * batch has no changes and the cursor it starts from.
 */
export interface WatchBatch {
  readonly changes: readonly KeyChange[];
  readonly cursor: string;
}

export interface ReadItemsOptions {
  readonly order: "forwards" | "backwards";
  readonly startOffset?: bigint | undefined;
  readonly startTimestamp?: bigint | undefined;
  readonly startNonce?: bigint | undefined;
  readonly limit?: number | undefined;
  readonly pageSize?: number | undefined;
  /** After the last item, keep waiting for new ones until `signal` aborts. */
  readonly follow?: boolean | undefined;
  readonly signal: AbortSignal;
}

export interface Backend {
  createKeyspace(
    keyspace: string,
    compression: "none" | "zstd",
    retention?: Retention | undefined,
  ): Promise<KeyspaceInfo>;
  keyspace(keyspace: string): Promise<KeyspaceInfo>;
  setRetention(keyspace: string, retention: Retention | undefined): Promise<KeyspaceInfo>;
  /** Resolves with the key's first available offset after the trim. */
  trim(keyspace: string, key: string, beforeOffset: bigint): Promise<bigint>;
  /** The keyspace's changes from now (or `cursor`) until `signal` aborts. */
  watch(keyspace: string, cursor: string | undefined, signal: AbortSignal): AsyncIterable<WatchBatch>;
  append(keyspace: string, key: string, insertions: readonly Insertion[]): Promise<ItemOutcome[]>;
  /** Undefined when the key holds no items. */
  keyMetadata(keyspace: string, key: string): Promise<KeyMetadata | undefined>;
  items(keyspace: string, key: string, options: ReadItemsOptions): AsyncIterable<Item>;
  /** Every key of the keyspace, in byte order (export). */
  keys(keyspace: string): Promise<string[]>;
  /** The writer shards as the --writer shard is configured (GetShards), and its own name. */
  shards(): Promise<{ shards: readonly { name: string; address: string }[]; thisShard: string }>;
  /**
   * The error to report for one a command met on this backend: it names the store (direct)
   * or the server (remote) it came from, so "does not exist" says where it looked.
   */
  explain(err: unknown): unknown;
  close(): Promise<void>;
}
