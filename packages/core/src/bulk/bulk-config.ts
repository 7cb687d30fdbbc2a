// Every limit of a bulk import, with its default. The CLI may override them; the engine
// only reads them.

export interface BulkImportConfig {
  /**
   * A key's buffered items are committed as one object once they encode to this many bytes.
   * The default is the writer's compact_size_threshold, so each such object is complete for
   * compaction at once (it becomes the watermark, and is never merged again).
   */
  readonly batchBytes: number;
  /** ... or once this many items are buffered (capped by the writer's max items per append). */
  readonly batchItems: number;
  /**
   * Value bytes held in memory across all keys (buffered and being committed). Past it, the
   * largest buffers are committed early and reading the input waits.
   */
  readonly maxBufferedBytes: number;
  /** Commits in flight at once, across keys (one at a time per key). */
  readonly maxInFlightCommits: number;
  /** Times one batch is retried after losing its claim to another writer (Fenced). */
  readonly maxFencedRetries: number;
  /**
   * The import record is rewritten at most so often that its bytes stay within this share
   * of the data bytes committed (a record grows with the keys an import touches).
   */
  readonly maxRecordOverhead: number;
  /**
   * ... and at most once per this many milliseconds: a crash loses only the record's view of
   * what committed since (a rerun finds that from the claims), while a record rewritten after
   * every 1 MiB commit would double the small requests an import makes.
   */
  readonly minRecordIntervalMillis: number;
  /** Concurrent GETs while reading a key's claims back after a crash. */
  readonly claimReadConcurrency: number;
}

export const BULK_IMPORT_DEFAULTS: Omit<BulkImportConfig, "batchBytes" | "batchItems"> = {
  maxBufferedBytes: 256 * 1024 * 1024,
  maxInFlightCommits: 12,
  maxFencedRetries: 8,
  maxRecordOverhead: 0.05,
  minRecordIntervalMillis: 1000,
  claimReadConcurrency: 8,
};

/** Items per batch when the writer allows more: 100,000, as compact_items_threshold's default. */
export const DEFAULT_BATCH_ITEMS = 100_000;
