// Public surface of @klstore/core: the engines, the storage backends and the format.

export { BULK_IMPORT_DEFAULTS, type BulkImportConfig } from "./bulk/bulk-config.ts";
export { BulkImporter, checkImportRow, ImportJob, type ImportStats } from "./bulk/bulk-import.ts";
export { IMPORT_ID_PATTERN, type ImportIdentity, importIdHash } from "./bulk/import-id.ts";
export type { ImportSource } from "./bulk/import-progress.ts";
export { type ImportRow, rowMemoryBytes } from "./bulk/key-batches.ts";
export { listKeys } from "./bulk/key-listing.ts";
export {
  advanceCursor,
  checkCursorAge,
  cursorAt,
  decodeWatchCursor,
  encodeWatchCursor,
  expireChangeObjects,
  inCommitOrderPerKey,
  listChangeObjects,
  MAX_CURSOR_WRITERS,
  pollChanges,
  RepeatedChangeFilter,
  readChangeObject,
  readWithinStep,
  startingCursor,
  type WatchCursor,
} from "./changes/change-feed.ts";
export {
  CHANGE_LOG_RETENTION_MILLIS,
  type ChangeObjectRef,
  changesFolder,
  type KeyChange,
  LOOKBACK_MILLIS,
} from "./changes/change-log.ts";
export * from "./config.ts";
export * from "./errors.ts";
export { decodeContinuation, encodeContinuation, type IterationOrder } from "./format/continuation.ts";
export type { KeyspaceSettings, Retention } from "./format/keyspace-config.ts";
export {
  type Compression,
  type DataObjectName,
  formatDataObjectName,
  KeyLayout,
  KeyspaceLayout,
  parseDataObjectName,
} from "./format/layout.ts";
export { checkWriterName, LogLayout } from "./format/log-layout.ts";
export type { LogId, SegmentIndex } from "./format/log-segment.ts";
export { copyRecords, decodeRecords, encodeRecords, type Item, storedRecords } from "./format/records.ts";
export { decodeSegment, encodeSegment } from "./format/segments.ts";
export {
  decodeLogCursor,
  encodeLogCursor,
  type LogWatchCursor,
  listLogs,
  logCursorAtEnd,
  readLogChanges,
} from "./log/log-changes.ts";
export { readSegmentIndex } from "./log/log-lane.ts";
export { refuseIfWrittenThroughLog, storeHasLogs } from "./log/log-presence.ts";
export { LOG_TAIL_DEFAULTS, LogTail, type LogTailConfig } from "./log/log-tail.ts";
export { LOG_DEFAULTS, type LogConfig, LogWriter, type LogWriterOptions } from "./log/log-writer.ts";
export {
  type ItemFilter,
  type ItemList,
  type KeyMetadata,
  type KeyspaceMetadata,
  type ReadPageRequest,
  RecentObject,
  StoreReader,
} from "./reader/store-reader.ts";
export { FilesystemStore } from "./storage/filesystem.ts";
export {
  countingStore,
  type ObjectStore,
  PreconditionFailed,
  readRange,
  StorageStats,
  type StoredObject,
} from "./storage/object-store.ts";
export { S3_DEFAULTS, S3Store, type S3StoreConfig, signPutsWithoutPayloadHash } from "./storage/s3.ts";
export { openStore, type StoreLocation, s3ConfigFromUrl } from "./storage/store-url.ts";
export { createCodecPool, InlineCodecPool, type RecordCodecPool, WorkerCodecPool } from "./workers/codec-pool.ts";
export type { AppendEngine } from "./writer/append-engine.ts";
export type { Insertion, ItemOutcome } from "./writer/append-plan.ts";
export { BatchingStoreWriter, type BatchingStoreWriterOptions } from "./writer/batching-writer.ts";
export {
  type CreateKeyspaceOptions,
  StoreWriter,
  type StoreWriterOptions,
  type TrimOutcome,
  type WriterObserver,
} from "./writer/store-writer.ts";
