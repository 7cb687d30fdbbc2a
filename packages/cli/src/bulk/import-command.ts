// `klstore import KS FILE...`: checks every file first (each line parsed and validated, the
// file hashed into its import id), so a bad line stops the import before anything of it is
// written; then imports each file through the bulk importer (packages/core/src/bulk). A file
// whose import completed before is skipped; one that was interrupted resumes exactly once.
// Files whose rows fit in the importer's buffer bound are kept from the check, so they are
// read and parsed once.

import { stat } from "node:fs/promises";
import {
  BulkImporter,
  checkImportRow,
  type ImportRow,
  type ImportStats,
  InvalidArgument,
  importIdHash,
  openStore,
  refuseIfWrittenThroughLog,
  rowMemoryBytes,
  type StoreLocation,
  StoreWriter,
  type WriterConfig,
} from "@klstore/core";
import { explainInStore } from "../backends/direct.ts";
import { type ImportFormat, type RowReading, readRows } from "./import-rows.ts";
import { progressOnTerminal } from "./progress-bar.ts";

export type { ImportFormat };

export interface ImportOptions {
  readonly files: readonly string[];
  /** By default from each file's extension: .csv is csv, anything else jsonl. */
  readonly format?: ImportFormat | undefined;
  readonly keyColumn: string;
  readonly valueColumn: string;
  /** Commits in flight at once (across keys). */
  readonly concurrency?: number | undefined;
  /** Memory for rows held at once (the importer's buffer bound), in MB. */
  readonly bufferMb?: number | undefined;
  readonly writerConfig?: Partial<WriterConfig> | undefined;
}

interface CheckedFile {
  readonly path: string;
  readonly reading: RowReading;
  readonly id: string;
  readonly bytes: number;
  readonly modifiedMillis: number;
  /** The file's rows as the check read them, when they fit in memory. */
  readonly rows: (ImportRow | undefined)[] | undefined;
}

/** Rows taken per progress-bar step when importing kept rows. */
const PROGRESS_ROWS = 1024;

/** The kept rows of a file, each let go of as it is taken (the importer holds what it buffers). */
async function* keptRows(file: CheckedFile, advance: (bytes: number) => void): AsyncGenerator<ImportRow> {
  const rows = file.rows as (ImportRow | undefined)[];
  const bytesPerRow = file.bytes / Math.max(1, rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as ImportRow;
    rows[i] = undefined;
    if (i % PROGRESS_ROWS === PROGRESS_ROWS - 1) advance(PROGRESS_ROWS * bytesPerRow);
    yield row;
  }
  advance((rows.length % PROGRESS_ROWS) * bytesPerRow);
}

async function fileStat(path: string): Promise<{ bytes: number; modifiedMillis: number }> {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new InvalidArgument("FILE", `${path} is not a regular file`);
    return { bytes: s.size, modifiedMillis: s.mtimeMs };
  } catch (err) {
    if (err instanceof InvalidArgument) throw err;
    throw new InvalidArgument("FILE", `cannot read ${path}: ${(err as Error).message}`);
  }
}

type Totals = ImportStats & {
  files: number;
  filesAlreadyImported: number;
  filesReadAgain: number;
  bytes: number;
  seconds: number;
};

const totalsLine = (s: Totals) =>
  JSON.stringify({
    files: s.files,
    files_already_imported: s.filesAlreadyImported,
    files_read_again: s.filesReadAgain,
    lines: s.lines,
    items_appended: s.itemsAppended,
    duplicates_skipped: s.duplicates,
    lines_already_imported: s.alreadyImported,
    keys: s.keys,
    objects_written: s.objects,
    bytes_read: s.bytes,
    value_bytes: s.valueBytes,
    seconds: Number(s.seconds.toFixed(3)),
    mb_per_second: Number((s.valueBytes / 1e6 / s.seconds).toFixed(2)),
  });

/** Imports the files in order; prints a one-line JSON summary to stderr at the end. */
export async function runImport(location: StoreLocation, keyspace: string, options: ImportOptions): Promise<void> {
  const started = performance.now();
  const { store, prefix } = openStore(location);
  // The bulk importer writes per-key objects; on the log it will point log entries at them.
  await refuseIfWrittenThroughLog(
    store,
    prefix,
    "klstore import writes per-key objects and cannot import into it yet; append the rows through the writer service",
  ).catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  const writer = new StoreWriter({ store, prefix, config: options.writerConfig });
  const importer = new BulkImporter(writer, {
    ...(options.concurrency ? { maxInFlightCommits: options.concurrency } : {}),
    ...(options.bufferMb ? { maxBufferedBytes: options.bufferMb * 1e6 } : {}),
  });
  const progress = progressOnTerminal();
  const totals: Totals = {
    files: options.files.length,
    filesAlreadyImported: 0,
    filesReadAgain: 0,
    bytes: 0,
    seconds: 0,
    lines: 0,
    itemsAppended: 0,
    duplicates: 0,
    alreadyImported: 0,
    keys: 0,
    objects: 0,
    valueBytes: 0,
  };
  // Live counters of every file's run, summed at the end even when a run fails.
  const runs: ImportStats[] = [];
  try {
    // A missing keyspace fails before any file is read.
    await writer.keyspaceSettings(keyspace).catch((err: unknown) => {
      throw explainInStore(err, store.description);
    });
    const checked: CheckedFile[] = [];
    const sizes = await Promise.all(options.files.map(fileStat));
    const allBytes = sizes.reduce((sum, s) => sum + s.bytes, 0);
    progress.start("checking", allBytes, "MB");
    // Memory for rows kept from the check, shared by the files in order.
    let keepBytesLeft = importer.config.maxBufferedBytes;
    for (const [i, path] of options.files.entries()) {
      const reading: RowReading = {
        format: options.format ?? (path.toLowerCase().endsWith(".csv") ? "csv" : "jsonl"),
        keyField: options.keyColumn,
        valueField: options.valueColumn,
      };
      const hash = importIdHash({ keyspace, reading: { ...reading } });
      const rows = readRows(path, reading, (chunk) => {
        hash.update(chunk);
        progress.advance(chunk.byteLength, path);
      });
      let kept: ImportRow[] | undefined = [];
      let keptBytes = 0;
      for await (const row of rows) {
        checkImportRow(row, writer.config, `${path} line ${row.line}`);
        if (!kept) continue;
        keptBytes += rowMemoryBytes(row);
        if (keptBytes <= keepBytesLeft) kept.push(row);
        else kept = undefined; // too large: read again when imported
      }
      if (kept) keepBytesLeft -= keptBytes;
      const { bytes, modifiedMillis } = sizes[i] as { bytes: number; modifiedMillis: number };
      checked.push({ path, reading, id: hash.digest("hex"), bytes, modifiedMillis, rows: kept });
    }

    progress.start("importing", allBytes, "MB");
    for (const file of checked) {
      const job = await importer.open(keyspace, { id: file.id, name: file.path, bytes: file.bytes });
      if (job.complete) {
        totals.filesAlreadyImported++;
        totals.lines += job.totals?.lines ?? 0;
        totals.alreadyImported += job.totals?.lines ?? 0;
        totals.keys += job.totals?.keys ?? 0;
        progress.advance(file.bytes, `${file.path} (imported before)`);
        continue;
      }
      await requireUnchanged(file);
      runs.push(job.stats);
      if (file.rows) {
        totals.bytes += file.bytes;
        await job.run(keptRows(file, (bytes) => progress.advance(bytes, file.path)));
      } else {
        totals.filesReadAgain++;
        const advance = (chunk: Buffer) => {
          totals.bytes += chunk.byteLength;
          progress.advance(chunk.byteLength, file.path);
        };
        await job.run(readRows(file.path, file.reading, advance));
      }
      // The id was computed from the content seen by the check; a file changed since then
      // would have been imported under the wrong id.
      await requireUnchanged(file);
    }
  } finally {
    progress.stop();
    await writer.close();
    await store.close();
    for (const stats of runs) {
      for (const k of [
        "lines",
        "itemsAppended",
        "duplicates",
        "alreadyImported",
        "keys",
        "objects",
        "valueBytes",
      ] as const)
        totals[k] += stats[k];
    }
    totals.seconds = (performance.now() - started) / 1000;
    // The summary comes even after an error (before its message): it says what was stored.
    process.stderr.write(`${totalsLine(totals)}\n`);
  }
}

async function requireUnchanged(file: CheckedFile): Promise<void> {
  const now = await fileStat(file.path);
  if (now.bytes !== file.bytes || now.modifiedMillis !== file.modifiedMillis) {
    throw new InvalidArgument("FILE", `${file.path} changed while being imported; run the import again`);
  }
}
