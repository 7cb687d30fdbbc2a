// What a writer shard appends through: the per-key protocol (BatchingStoreWriter,
// docs/fencing.md) or the shared log (LogWriter, docs/log.md). The services depend on this
// alone, so `[log] enabled` picks one without the handlers knowing which.

import type { WriterConfig } from "../config.ts";
import type { KeyspaceSettings, Retention } from "../format/keyspace-config.ts";
import type { Insertion, ItemOutcome } from "./append-plan.ts";
import type { CreateKeyspaceOptions, TrimOutcome, WriterObserver } from "./store-writer.ts";

export interface AppendEngine {
  /** Limits and thresholds (max_items_per_append, ...). */
  readonly config: WriterConfig;
  /** Queues insertions for one key; resolves once they hold their place, with their outcomes' promise. */
  submit(keyspace: string, key: string, insertions: readonly Insertion[]): Promise<{ outcome: Promise<ItemOutcome[]> }>;
  appendList(keyspace: string, key: string, insertions: readonly Insertion[]): Promise<ItemOutcome[]>;
  createKeyspace(keyspace: string, options?: CreateKeyspaceOptions): Promise<KeyspaceSettings>;
  keyspaceSettings(keyspace: string): Promise<KeyspaceSettings>;
  /** The settings as stored, bypassing the cache. */
  readKeyspaceSettings(keyspace: string): Promise<KeyspaceSettings>;
  setRetention(keyspace: string, retention: Retention | undefined): Promise<KeyspaceSettings>;
  trim(keyspace: string, key: string, before: bigint): Promise<TrimOutcome>;
  applyRetention(keyspace: string, key: string): Promise<TrimOutcome | undefined>;
  flushKey(keyspace: string, key: string): Promise<void>;
  flushAll(): Promise<void>;
  close(): Promise<void>;
  /** Items and value bytes accepted but not yet durable. */
  readonly queued: { items: number; bytes: number };
  /** Bytes of recent bodies kept in memory (for compaction, or materialization). */
  readonly cacheBytes: number;
  /** Told about stored batches and compactions, for metrics. */
  observer: WriterObserver;
  /** Background work (compaction, materialization) never fails an append; it is reported here. */
  onBackgroundError: (err: unknown, what: string) => void;
}
