// One import's progress in storage (docs/bulk.md): the import record, rewritten as batches
// commit (group commit: one PUT in flight, the next covers everything finished meanwhile, at
// most once a second and no more often than keeps the record a small share of the bytes
// written). It also names every key the import has started, with the offset its claims on
// the key are at or after, before the first of them: keys starting together share one
// write. That lets a rerun find exactly which lines are stored without reading more than
// the key's newest claims.

import { setTimeout as sleep } from "node:timers/promises";
import { Fenced } from "../errors.ts";
import { KeyspaceLayout } from "../format/layout.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { listAll } from "../writer/key-state.ts";
import type { StoreWriter } from "../writer/store-writer.ts";
import {
  decodeImportRecord,
  decodeMarker,
  encodeImportRecord,
  ImportLayout,
  type ImportRecord,
  type ImportTotals,
  type KeyProgress,
} from "./import-record.ts";
import { findLandedBatch, type LandedBatch } from "./landed-batches.ts";

/** Times the landed-batch search is asked again after a live writer fenced its key recovery. */
const LANDED_READ_RETRIES = 8;

export interface ImportSource {
  /** The import id (import-id.ts). */
  readonly id: string;
  /** A name for operators, e.g. the file's path. */
  readonly name: string;
  readonly bytes: number;
}

/** Where a key stands for this run: lines up to `skipThrough` are already stored. */
export interface KeyStart {
  readonly skipThrough: number;
  /** This run's batches of the key will be claimed at or after this offset. */
  readonly nextOffsetAfter: bigint;
}

export interface ProgressOptions {
  /** Record bytes written stay within this share of the value bytes committed. */
  readonly maxRecordOverhead: number;
  /** ... and are at least this far apart (the last write, which completes the import, excepted). */
  readonly minRecordIntervalMillis: number;
  readonly claimReadConcurrency: number;
}

export class ImportProgress {
  private readonly keys: Map<string, KeyProgress>;
  /** Changes to `keys`, counted; `recorded` is the count the last stored record covers. */
  private changes = 0;
  private recorded = 0;
  /** Settles (never rejects: a failure goes to `failure`) when the record write in flight ends. */
  private writing: Promise<void> | undefined;
  private failure: unknown;
  private bytesSinceWrite = 0;
  private lastRecordBytes = 0;
  private lastWriteMillis = Number.NEGATIVE_INFINITY;
  /** Set while a write waits for the interval since the last one to pass. */
  private pendingWrite: NodeJS.Timeout | undefined;

  readonly complete: boolean;
  readonly totals: ImportTotals | undefined;
  private readonly writer: StoreWriter;
  private readonly store: ObjectStore;
  private readonly keyspace: KeyspaceLayout;
  private readonly layout: ImportLayout;
  private readonly source: ImportSource;
  private readonly options: ProgressOptions;

  private constructor(
    writer: StoreWriter,
    keyspace: KeyspaceLayout,
    source: ImportSource,
    loaded: ImportRecord | undefined,
    options: ProgressOptions,
  ) {
    this.writer = writer;
    this.store = writer.store;
    this.keyspace = keyspace;
    this.source = source;
    this.options = options;
    this.layout = new ImportLayout(keyspace, source.id);
    this.keys = new Map(loaded?.keys ?? []);
    this.complete = loaded?.complete ?? false;
    this.totals = loaded?.totals;
  }

  /** Reads the import's record, if an earlier run left one. */
  static async open(
    writer: StoreWriter,
    keyspace: string,
    source: ImportSource,
    options: ProgressOptions,
  ): Promise<ImportProgress> {
    const layout = new KeyspaceLayout(writer.prefix, keyspace);
    const recordKey = new ImportLayout(layout, source.id).recordKey;
    const stored = await writer.store.get(recordKey);
    const record = stored ? decodeImportRecord(recordKey, stored.body) : undefined;
    const progress = new ImportProgress(writer, layout, source, record, options);
    if (!progress.complete) await progress.readLegacyMarkers();
    return progress;
  }

  /**
   * Runs of earlier versions wrote a marker per key instead of recording the key: a key
   * with a marker that the record does not know may hold their batches from the marker's
   * offset on. One LIST, which finds none for imports started since.
   */
  private async readLegacyMarkers(): Promise<void> {
    const listed = await listAll(this.store, this.layout.markerFolder, "");
    for (const { key: markerKey } of listed) {
      const marker = await this.store.get(markerKey);
      if (!marker) continue;
      const { key, from } = decodeMarker(markerKey, marker.body);
      if (!this.keys.has(key)) this.keys.set(key, { linesDone: 0, nextOffsetAfter: from });
    }
  }

  /** Lines of `key` an earlier run recorded as stored: skipped without being buffered. */
  linesDone(key: string): number {
    return this.keys.get(key)?.linesDone ?? 0;
  }

  /**
   * Called once per key and run, before the run's first commit to it. A key the record
   * knows may hold batches a crashed run committed after the record was last written: its
   * claims from the known offset on say which. A key it does not know holds nothing of this
   * import (a run records a key before claiming anything in it); it is recorded now, in a
   * write shared with the keys starting meanwhile.
   */
  async startKey(key: string): Promise<KeyStart> {
    const known = this.keys.get(key);
    if (!known) {
      // The writer's view of the key's end is at most the truth, and every claim of this run
      // goes through that writer, so its claims can only be at or after it.
      const from = await this.writer.nextOffset(this.keyspace.keyspace, key);
      this.keys.set(key, { linesDone: 0, nextOffsetAfter: from });
      this.changes++;
      await this.recordNow();
      return { skipThrough: 0, nextOffsetAfter: from };
    }
    const from = known.nextOffsetAfter;
    const landed = await this.landedSince(key, from);
    return {
      skipThrough: Math.max(known.linesDone, landed?.lastLine ?? 0),
      nextOffsetAfter: landed && landed.offset + 1n > from ? landed.offset + 1n : from,
    };
  }

  /**
   * The newest stored batch of this import in `key` claimed at or after `from`. Finding it
   * recovers the key as a writer does, which a live writer committing all the while can
   * fence; the question is then asked again, never skipped (re-sending a batch that had
   * landed would store it twice).
   */
  async landedSince(key: string, from: bigint): Promise<LandedBatch | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await findLandedBatch(
          this.store,
          this.keyspace.key(key),
          this.source.id,
          from,
          this.options.claimReadConcurrency,
        );
      } catch (err) {
        if (!(err instanceof Fenced) || attempt >= LANDED_READ_RETRIES) throw err;
        await sleep(Math.min(1000, 10 * 2 ** attempt));
      }
    }
  }

  /** A batch of `key` through line `linesDone` is stored; recorded with the next write. */
  committed(key: string, linesDone: number, nextOffsetAfter: bigint, valueBytes: number): void {
    this.keys.set(key, { linesDone, nextOffsetAfter });
    this.changes++;
    this.bytesSinceWrite += valueBytes;
    this.writeSoon();
  }

  /** A failed record write fails the import (a later write would not be any safer). */
  throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Writes what is not yet recorded (after a failure, so a rerun starts as late as possible). */
  async checkpoint(): Promise<void> {
    this.cancelPendingWrite();
    await this.writing;
    if (this.recorded < this.changes && this.failure === undefined) await this.write(undefined);
  }

  /** Every line is stored: the record says so, and a rerun does nothing. */
  async finish(totals: ImportTotals): Promise<void> {
    this.cancelPendingWrite();
    await this.writing;
    this.throwIfFailed();
    await this.write(totals);
  }

  /**
   * Resolves once a stored record covers every change made so far, writing at once (past the
   * interval and overhead bounds) when no write in flight does.
   */
  private async recordNow(): Promise<void> {
    const needed = this.changes;
    while (this.recorded < needed) {
      this.throwIfFailed();
      if (!this.writing) {
        this.cancelPendingWrite();
        this.startWrite();
      }
      await this.writing;
    }
    this.throwIfFailed();
  }

  private writeSoon(): void {
    if (this.writing || this.pendingWrite || this.recorded === this.changes || this.failure !== undefined) return;
    if (this.bytesSinceWrite * this.options.maxRecordOverhead < this.lastRecordBytes) return;
    const wait = this.lastWriteMillis + this.options.minRecordIntervalMillis - performance.now();
    if (wait > 0) {
      // Unref'd: a finished or failed import writes (or gives up) without waiting for it.
      this.pendingWrite = setTimeout(() => {
        this.pendingWrite = undefined;
        this.writeSoon();
      }, wait).unref();
      return;
    }
    this.startWrite();
  }

  private startWrite(): void {
    this.writing = this.write(undefined).then(
      () => {
        this.writing = undefined;
        this.writeSoon();
      },
      (err: unknown) => {
        this.failure ??= err;
        this.writing = undefined;
      },
    );
  }

  private cancelPendingWrite(): void {
    clearTimeout(this.pendingWrite);
    this.pendingWrite = undefined;
  }

  private async write(totals: ImportTotals | undefined): Promise<void> {
    this.lastWriteMillis = performance.now();
    const covered = this.changes;
    this.bytesSinceWrite = 0;
    const body = encodeImportRecord({
      id: this.source.id,
      keyspace: this.keyspace.keyspace,
      source: this.source.name,
      sourceBytes: this.source.bytes,
      complete: totals !== undefined,
      totals,
      keys: this.keys,
    });
    this.lastRecordBytes = body.byteLength;
    await this.store.put(this.layout.recordKey, body);
    this.recorded = Math.max(this.recorded, covered);
  }
}
