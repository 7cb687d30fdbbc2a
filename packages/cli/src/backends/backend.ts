// What the CLI's commands need from klstore, whether they reach storage directly (direct.ts)
// or go through the services (remote.ts): the commands are written once against this.

import type { Insertion, Item, ItemOutcome, KeyMetadata } from "@klstore/core";

export interface KeyspaceInfo {
  readonly keyspace: string;
  readonly createdMillis: bigint;
  readonly compression: "none" | "zstd";
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
  createKeyspace(keyspace: string, compression: "none" | "zstd"): Promise<KeyspaceInfo>;
  keyspace(keyspace: string): Promise<KeyspaceInfo>;
  append(keyspace: string, key: string, insertions: readonly Insertion[]): Promise<ItemOutcome[]>;
  /** Undefined when the key holds no items. */
  keyMetadata(keyspace: string, key: string): Promise<KeyMetadata | undefined>;
  items(keyspace: string, key: string, options: ReadItemsOptions): AsyncIterable<Item>;
  /** Every key of the keyspace, in byte order (export). */
  keys(keyspace: string): Promise<string[]>;
  close(): Promise<void>;
}
