// Bulk import: rows streamed from a file, grouped per key into large objects, committed
// through the StoreWriter (claim, then data: docs/fencing.md), so an import never races a
// live writer of the same key: a collision fences one side, which re-reads the key. Each
// batch's claim is tagged with the import id and its last line, and progress is kept in the
// import record, so a rerun after a crash stores every line exactly once (docs/bulk.md).

import type { LimitsConfig } from "../config.ts";
import { Fenced, InvalidArgument } from "../errors.ts";
import { encodeSegment } from "../format/segments.ts";
import { type ItemOutcome, validateInsertions } from "../writer/append-plan.ts";
import type { StoreWriter } from "../writer/store-writer.ts";
import { BULK_IMPORT_DEFAULTS, type BulkImportConfig, DEFAULT_BATCH_ITEMS } from "./bulk-config.ts";
import { IMPORT_ID_PATTERN } from "./import-id.ts";
import { ImportProgress, type ImportSource, type KeyStart } from "./import-progress.ts";
import { type ImportRow, type KeyBatch, KeyBuffers } from "./key-batches.ts";
import { importClaimTag } from "./landed-batches.ts";

export interface ImportStats {
  /** Lines read (rows; blank lines are not rows). */
  lines: number;
  itemsAppended: number;
  /** Dropped by the writer: nonce below the key's next nonce. */
  duplicates: number;
  /** Stored by an earlier run of this import, so skipped. */
  alreadyImported: number;
  keys: number;
  /** Data objects committed. */
  objects: number;
  /** Value bytes of the items appended. */
  valueBytes: number;
}

/**
 * Checks a row as the writer will, so a bad line is reported (as `where`, e.g. "data.jsonl
 * line 7") before anything is written.
 */
export function checkImportRow(
  row: ImportRow,
  limits: LimitsConfig & { readonly clock: () => bigint },
  where = `line ${row.line}`,
): void {
  try {
    encodeSegment("key", row.key);
    validateInsertions([row.insertion], limits, limits.clock());
  } catch (err) {
    if (!(err instanceof InvalidArgument)) throw err;
    const field = err.field.replace("items[0].", "");
    throw new InvalidArgument(`${where} ${field}`, err.message.slice(`invalid ${err.field}: `.length));
  }
}

export class BulkImporter {
  readonly writer: StoreWriter;
  readonly config: BulkImportConfig;

  constructor(writer: StoreWriter, config: Partial<BulkImportConfig> = {}) {
    this.writer = writer;
    this.config = {
      batchBytes: writer.config.compactSizeThreshold,
      batchItems: Math.min(DEFAULT_BATCH_ITEMS, writer.config.maxItemsPerAppend),
      ...BULK_IMPORT_DEFAULTS,
      ...config,
    };
  }

  /**
   * Opens the import of one source into a keyspace, reading what earlier runs of it left.
   * Fails with KeyspaceNotFound before anything is written.
   */
  async open(keyspace: string, source: ImportSource): Promise<ImportJob> {
    if (!IMPORT_ID_PATTERN.test(source.id)) throw new InvalidArgument("import id", "must be a hex sha256");
    await this.writer.keyspaceSettings(keyspace);
    const progress = await ImportProgress.open(this.writer, keyspace, source, {
      maxRecordOverhead: this.config.maxRecordOverhead,
      minRecordIntervalMillis: this.config.minRecordIntervalMillis,
      claimReadConcurrency: this.config.claimReadConcurrency,
    });
    return new ImportJob(this, keyspace, source, progress);
  }
}

/**
 * Batches in a row whose commit leaves the key's watermark where it was (compaction.ts,
 * `holdWatermark`): the LIST that finds the key's tail then names up to this many more
 * objects, a quarter of one LIST page. The key's last batch of the input moves it.
 */
const MAX_HELD_WATERMARKS = 256;

/** A key's place in this run: its batches commit one at a time, in file order. */
interface KeyLane {
  readonly key: string;
  readonly queue: KeyBatch[];
  running: boolean;
  start: KeyStart | undefined;
  nextOffsetAfter: bigint;
  /** Commits since the last one that moved the watermark. */
  heldWatermarks: number;
}

export class ImportJob {
  readonly stats: ImportStats = {
    lines: 0,
    itemsAppended: 0,
    duplicates: 0,
    alreadyImported: 0,
    keys: 0,
    objects: 0,
    valueBytes: 0,
  };
  private readonly lanes = new Map<string, KeyLane>();
  private readonly ready: KeyLane[] = [];
  /** Commits holding a slot (`maxInFlightCommits`): until their key is free again. */
  private inFlight = 0;
  /** Commits not yet settled: a commit's change still on its way to the change log counts. */
  private unsettled = 0;
  /** Memory of rows taken as batches and not yet committed. */
  private batchedBytes = 0;
  private failure: { error: unknown } | undefined;
  private wakeUp: (() => void) | undefined;
  /** Every row is read: a key's batch with none queued behind it is its last. */
  private inputRead = false;

  private readonly importer: BulkImporter;
  readonly keyspace: string;
  readonly source: ImportSource;
  private readonly progress: ImportProgress;

  constructor(importer: BulkImporter, keyspace: string, source: ImportSource, progress: ImportProgress) {
    this.importer = importer;
    this.keyspace = keyspace;
    this.source = source;
    this.progress = progress;
  }

  /** An earlier run stored every line: running it again does nothing. */
  get complete(): boolean {
    return this.progress.complete;
  }

  /** Lines and keys of the completed import (when `complete`). */
  get totals() {
    return this.progress.totals;
  }

  /**
   * Imports the rows (line numbers increasing). Resolves once every row is stored and the
   * record says the import is complete; on an error, stops reading, lets the commits in
   * flight finish, records them, and rejects.
   */
  async run(rows: AsyncIterable<ImportRow>): Promise<ImportStats> {
    if (this.complete) return this.stats;
    const { config, writer } = this.importer;
    const buffers = new KeyBuffers(config.batchBytes, config.batchItems);
    const memory = () => buffers.memoryBytes + this.batchedBytes;
    try {
      for await (const row of rows) {
        this.stats.lines++;
        checkImportRow(row, writer.config);
        const lane = this.laneOf(row.key);
        if (row.line <= this.progress.linesDone(lane.key)) {
          this.stats.alreadyImported++;
          continue;
        }
        const full = buffers.add(row);
        if (full) this.enqueue(full);
        while (memory() > config.maxBufferedBytes) {
          this.throwIfFailed();
          // Most memory in buffers: commit the largest now, as smaller objects, rather than wait.
          if (buffers.memoryBytes > config.maxBufferedBytes / 2) {
            for (const batch of buffers.takeLargest(config.maxBufferedBytes / 4)) this.enqueue(batch);
          }
          await this.nextCompletion();
        }
        this.throwIfFailed();
      }
      this.inputRead = true;
      for (const batch of buffers.takeAll()) this.enqueueRemainder(batch);
      while (this.unsettled > 0 || (this.ready.length > 0 && !this.failure)) await this.nextCompletion();
      this.throwIfFailed();
      await this.progress.finish({ lines: this.stats.lines, keys: this.lanes.size });
      return this.stats;
    } catch (err) {
      this.failure ??= { error: err };
      while (this.unsettled > 0) await this.nextCompletion();
      // Recording what did commit only shortens a rerun's search; if storage refuses it too,
      // the rerun finds the same from the claims, so the first error is the one to report.
      await this.progress.checkpoint().catch(() => {});
      throw this.failure.error;
    }
  }

  private laneOf(key: string): KeyLane {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { key, queue: [], running: false, start: undefined, nextOffsetAfter: 0n, heldWatermarks: 0 };
      this.lanes.set(key, lane);
      this.stats.keys++;
    }
    return lane;
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
    this.progress.throwIfFailed();
  }

  private enqueue(batch: KeyBatch): void {
    const lane = this.laneOf(batch.key);
    lane.queue.push(batch);
    this.batchedBytes += batch.memoryBytes;
    if (!lane.running && lane.queue.length === 1) this.ready.push(lane);
    this.pump();
  }

  /**
   * A key's rows left at the end of the input. Less than half a batch joins the key's last
   * batch if that has not started yet: one object of up to 1.5 batches rather than a full
   * one and a small one (each object costs a claim and a PUT, and readers a GET).
   */
  private enqueueRemainder(batch: KeyBatch): void {
    const { batchBytes, batchItems } = this.importer.config;
    const lane = this.laneOf(batch.key);
    const last = lane.queue.at(-1);
    const small = batch.encodedBytes < batchBytes / 2;
    if (!last || !small || last.rows.length + batch.rows.length > batchItems) {
      this.enqueue(batch);
      return;
    }
    lane.queue[lane.queue.length - 1] = {
      key: batch.key,
      rows: last.rows.concat(batch.rows),
      encodedBytes: last.encodedBytes + batch.encodedBytes,
      memoryBytes: last.memoryBytes + batch.memoryBytes,
    };
    this.batchedBytes += batch.memoryBytes;
  }

  /**
   * Starts commits while there is room: one per key at a time, in the order keys became ready.
   * A commit gives its slot back once its key is free, before its change reaches the change
   * log (the log's PUT, shared by the commits finishing meanwhile, is then off the storage
   * path); the key's next batch still waits for it, so a key's changes stay in order. A batch
   * retried after Fenced has given its slot back with the first attempt: retries are rare,
   * and a slot is a bound on concurrent storage work, not a correctness condition.
   */
  private pump(): void {
    while (!this.failure && this.inFlight < this.importer.config.maxInFlightCommits) {
      const lane = this.ready.shift();
      if (!lane) return;
      const batch = lane.queue.shift() as KeyBatch;
      lane.running = true;
      this.inFlight++;
      this.unsettled++;
      let holdsSlot = true;
      const freeSlot = () => {
        if (!holdsSlot) return;
        holdsSlot = false;
        this.inFlight--;
        this.pump();
        this.wakeUp?.();
      };
      this.commit(lane, batch, freeSlot)
        .catch((err: unknown) => {
          this.failure ??= { error: err };
        })
        .finally(() => {
          freeSlot();
          this.unsettled--;
          this.batchedBytes -= batch.memoryBytes;
          lane.running = false;
          if (lane.queue.length > 0) this.ready.push(lane);
          this.pump();
          this.wakeUp?.();
        });
    }
  }

  private nextCompletion(): Promise<void> {
    if (this.unsettled === 0 && (this.ready.length === 0 || this.failure)) return Promise.resolve();
    return new Promise((resolve) => {
      this.wakeUp = () => {
        this.wakeUp = undefined;
        resolve();
      };
    });
  }

  private async commit(lane: KeyLane, batch: KeyBatch, onKeyFree: () => void): Promise<void> {
    const { writer, config } = this.importer;
    if (!lane.start) {
      lane.start = await this.progress.startKey(lane.key);
      lane.nextOffsetAfter = lane.start.nextOffsetAfter;
    }
    const lastLine = (batch.rows.at(-1) as ImportRow).line;
    let rows = batch.rows.filter((r) => r.line > (lane.start as KeyStart).skipThrough);
    this.stats.alreadyImported += batch.rows.length - rows.length;
    // One watermark PUT per key and run rather than per batch; a key whose last batch
    // committed before the input ended keeps its watermark up to MAX_HELD_WATERMARKS behind.
    const last = this.inputRead && lane.queue.length === 0;
    const holdWatermark = !last && lane.heldWatermarks < MAX_HELD_WATERMARKS;
    lane.heldWatermarks = holdWatermark ? lane.heldWatermarks + 1 : 0;
    for (let attempt = 0; rows.length > 0; attempt++) {
      try {
        const outcomes = await writer.commitValidated(
          this.keyspace,
          lane.key,
          rows.map((r) => r.insertion),
          { claimTag: importClaimTag(this.source.id, lastLine), onKeyFree, holdWatermark },
        );
        let lastAppended: bigint | undefined;
        for (let i = 0; i < outcomes.length; i++) {
          const outcome = outcomes[i] as ItemOutcome;
          if (outcome.kind === "duplicate") {
            this.stats.duplicates++;
            continue;
          }
          lastAppended = outcome.offset;
          this.stats.itemsAppended++;
          this.stats.valueBytes += (rows[i] as ImportRow).insertion.value.byteLength;
        }
        if (lastAppended !== undefined) {
          lane.nextOffsetAfter = lastAppended + 1n;
          this.stats.objects++;
        }
        break;
      } catch (err) {
        if (!(err instanceof Fenced) || attempt >= config.maxFencedRetries) throw err;
        // Fenced: another writer took the offset, so nothing was committed... unless the lost
        // claim was our own earlier attempt whose answer never came back (a retried request).
        // The claims say which; what they show stored is not sent again.
        const landed = await this.progress.landedSince(lane.key, lane.nextOffsetAfter);
        if (landed) {
          if (landed.offset + 1n > lane.nextOffsetAfter) lane.nextOffsetAfter = landed.offset + 1n;
          const stored = rows.filter((r) => r.line <= landed.lastLine);
          rows = rows.filter((r) => r.line > landed.lastLine);
          if (stored.length > 0) this.stats.objects++;
          for (const r of stored) {
            this.stats.itemsAppended++;
            this.stats.valueBytes += r.insertion.value.byteLength;
          }
        }
      }
    }
    this.progress.committed(lane.key, lastLine, lane.nextOffsetAfter, rowsBytes(batch.rows));
  }
}

function rowsBytes(rows: readonly ImportRow[]): number {
  let bytes = 0;
  for (const r of rows) bytes += r.insertion.value.byteLength;
  return bytes;
}
