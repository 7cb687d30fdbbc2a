// Every limit and default of the engine, named after the config file's keys (docs/operations.md).
// The services and the CLI fill these from config files, environment and flags; the engine
// only reads.

export interface LimitsConfig {
  /** Largest value accepted in one item, in bytes. */
  maxValueBytes: number;
  /** Most items accepted in one append call. */
  maxItemsPerAppend: number;
  /**
   * How far an insertion's timestamp may be ahead of the writer's clock, in ms. Timestamps
   * never decrease along a key, so one far in the future would stamp every later item of
   * the key with it: such an append is refused instead.
   */
  maxFutureTimestampMillis: number;
}

export interface WriterConfig extends LimitsConfig {
  /** Keys whose state stays cached (LRU); a miss re-reads the key's tail from storage. */
  maxCachedKeys: number;
  /** Compact once the uncompacted objects of a key hold this many items. */
  compactItemsThreshold: number;
  /** Compact once the uncompacted objects of a key hold this many bytes. */
  compactSizeThreshold: number;
  /** Merge the uncompacted objects of a key once there are this many. */
  compactObjectsThreshold: number;
  /**
   * Bytes of this writer's recent uncompacted objects kept in memory (least recently used
   * dropped first), so compaction merges them without reading them back; 0 keeps none.
   */
  compactionCacheBytes: number;
  /** Clock for items without a timestamp (ms since epoch); replaceable in tests. */
  clock: () => bigint;
  /** Record every commit in its keyspace's change log (needed by watchers; docs/watch.md). */
  changeLog: boolean;
}

export interface ReaderConfig extends LimitsConfig {
  /** Items per page when the caller gives no max_size. */
  defaultMaxResults: number;
  /** Upper bound on max_size, so one page cannot demand unbounded memory. */
  maxPageItems: number;
  /**
   * A page ends before its values pass this many bytes (it holds at least one item), so a
   * page of large values fits a gRPC message (64 MiB) and the reader's memory.
   */
  maxPageBytes: number;
  /** Objects asked for per LIST request while seeking and iterating. */
  listPageSize: number;
  /** Times a read restarts after the objects it listed were compacted away under it. */
  maxCompactionRetries: number;
}

export interface BatchingConfig {
  /** Worker threads doing serialization and compaction (0 = inline on the main thread). */
  writerThreadCount: number;
  /** Insertions waiting across all keys before new appends are refused (RESOURCE_EXHAUSTED). */
  writerThreadQueueCapacity: number;
  /** Value bytes waiting across all keys before new appends are refused (RESOURCE_EXHAUSTED). */
  writerQueueMaxBytes: number;
  /** How often due batches are looked for. */
  batchCheckIntervalMillis: number;
  /** A key's pending items are flushed at most this long after the first arrived. */
  batchFlushIntervalMillis: number;
  /** Flush a key once this many items are pending. */
  batchFlushItemCountThreshold: number;
  /** Flush a key once this many value bytes are pending. */
  batchFlushSizeThreshold: number;
  /**
   * Commits running at once across keys. A due group waits for a free one and keeps taking
   * arrivals meanwhile, so under load groups grow instead of commits multiplying.
   */
  maxConcurrentCommits: number;
  /**
   * Value bytes per object: a larger group is committed as several objects, split between
   * calls. Readers fetch whole objects, so objects must not grow without bound under load.
   */
  batchMaxBytes: number;
}

export const LIMIT_DEFAULTS: LimitsConfig = {
  maxValueBytes: 1024 * 1024,
  maxItemsPerAppend: 100_000,
  maxFutureTimestampMillis: 24 * 3_600_000,
};

export const WRITER_DEFAULTS: WriterConfig = {
  ...LIMIT_DEFAULTS,
  maxCachedKeys: 100_000,
  compactItemsThreshold: 100_000,
  compactSizeThreshold: 1024 * 1024,
  compactObjectsThreshold: 100,
  compactionCacheBytes: 64 * 1024 * 1024,
  clock: () => BigInt(Date.now()),
  changeLog: true,
};

export const READER_DEFAULTS: ReaderConfig = {
  ...LIMIT_DEFAULTS,
  defaultMaxResults: 1000,
  maxPageItems: 100_000,
  maxPageBytes: 16 * 1024 * 1024,
  listPageSize: 1000,
  maxCompactionRetries: 8,
};

export const BATCHING_DEFAULTS: BatchingConfig = {
  writerThreadCount: 1,
  writerThreadQueueCapacity: 1_000_000,
  writerQueueMaxBytes: 256 * 1024 * 1024,
  batchCheckIntervalMillis: 100,
  batchFlushIntervalMillis: 1000,
  batchFlushItemCountThreshold: Number.MAX_SAFE_INTEGER,
  batchFlushSizeThreshold: 1_000_000,
  maxConcurrentCommits: 32,
  batchMaxBytes: 8 * 1024 * 1024,
};
