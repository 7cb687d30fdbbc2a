// Where an import keeps its progress, and the codec of those objects (docs/bulk.md):
//   {prefix}{ks}/.imports/{id}.json         the import record: per key started, lines done and
//                                            the offset this import's next claims are at or after
//   {prefix}{ks}/.imports/{id}/{keySegment} a key's marker, from runs of earlier versions
//                                            (read, never written): claims at or after `from`
// A folder whose name starts with "." is never a key's folder (key segments escape a
// leading "."), so readers, writers and key listings never meet these objects.

import { CorruptObject } from "../errors.ts";
import type { KeyspaceLayout } from "../format/layout.ts";
import { encodeSegment } from "../format/segments.ts";

const IMPORTS_FOLDER = ".imports";
const RECORD_FORMAT = "klstore-import/1";

/** Object keys of one import. */
export class ImportLayout {
  readonly recordKey: string;
  readonly markerFolder: string;

  constructor(keyspace: KeyspaceLayout, id: string) {
    this.recordKey = `${keyspace.keysFolder}${IMPORTS_FOLDER}/${id}.json`;
    this.markerFolder = `${keyspace.keysFolder}${IMPORTS_FOLDER}/${id}/`;
  }

  markerKey(key: string): string {
    return `${this.markerFolder}${encodeSegment("key", key)}`;
  }
}

export interface KeyProgress {
  /** Every line of this key numbered at most this is stored (or was a duplicate nonce). */
  readonly linesDone: number;
  /** This import's later batches of the key were all claimed at or after this offset. */
  readonly nextOffsetAfter: bigint;
}

/** What a complete import holds: enough for a rerun to report what it skipped. */
export interface ImportTotals {
  readonly lines: number;
  readonly keys: number;
}

export interface ImportRecord {
  readonly id: string;
  readonly keyspace: string;
  /** For operators reading the bucket: the file it came from and its size. */
  readonly source: string;
  readonly sourceBytes: number;
  /** Set once every line is stored; a rerun then does nothing. */
  readonly complete: boolean;
  /** Only when complete. */
  readonly totals?: ImportTotals | undefined;
  readonly keys: ReadonlyMap<string, KeyProgress>;
}

export function encodeImportRecord(record: ImportRecord): Uint8Array {
  const keys: Record<string, { linesDone: number; nextOffsetAfter: string }> = {};
  for (const [key, p] of record.keys)
    keys[key] = { linesDone: p.linesDone, nextOffsetAfter: String(p.nextOffsetAfter) };
  return Buffer.from(
    JSON.stringify({
      format: RECORD_FORMAT,
      id: record.id,
      keyspace: record.keyspace,
      source: record.source,
      sourceBytes: record.sourceBytes,
      complete: record.complete,
      ...(record.totals ? { totals: record.totals } : {}),
      keys,
    }),
  );
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isOffset = (v: unknown): v is string => typeof v === "string" && /^\d{1,20}$/.test(v);

export function decodeImportRecord(objectKey: string, bytes: Uint8Array): ImportRecord {
  const corrupt = (reason: string) => new CorruptObject(objectKey, `import record ${reason}`);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    throw corrupt("is not JSON");
  }
  if (typeof raw !== "object" || raw === null || raw.format !== RECORD_FORMAT) throw corrupt(`is not ${RECORD_FORMAT}`);
  const { id, keyspace, source, sourceBytes, complete, totals, keys } = raw;
  if (typeof id !== "string" || typeof keyspace !== "string" || typeof source !== "string") {
    throw corrupt("lacks id, keyspace or source");
  }
  if (!isCount(sourceBytes) || typeof complete !== "boolean") throw corrupt("lacks sourceBytes or complete");
  if (typeof keys !== "object" || keys === null) throw corrupt("lacks keys");
  const progress = new Map<string, KeyProgress>();
  for (const [key, p] of Object.entries(keys as Record<string, unknown>)) {
    const { linesDone, nextOffsetAfter } = (p ?? {}) as Record<string, unknown>;
    if (!isCount(linesDone) || !isOffset(nextOffsetAfter))
      throw corrupt(`has a bad entry for key ${JSON.stringify(key)}`);
    progress.set(key, { linesDone, nextOffsetAfter: BigInt(nextOffsetAfter) });
  }
  return {
    id,
    keyspace,
    source,
    sourceBytes,
    complete,
    totals: complete ? decodeTotals(totals, corrupt) : undefined,
    keys: progress,
  };
}

function decodeTotals(raw: unknown, corrupt: (reason: string) => Error): ImportTotals {
  const t = (raw ?? {}) as Record<string, unknown>;
  const fields = ["lines", "keys"] as const;
  if (!fields.every((f) => isCount(t[f]))) throw corrupt("is complete but its totals are missing or bad");
  return t as unknown as ImportTotals;
}

/**
 * A key's marker, as runs of earlier versions wrote it before their first commit to the key
 * (the record now names the key instead): this import's claims on the key are all at
 * offsets >= `from`. Encoded here only for tests of reruns across that change.
 */
export function encodeMarker(key: string, from: bigint): Uint8Array {
  return Buffer.from(JSON.stringify({ key, from: String(from) }));
}

export function decodeMarker(objectKey: string, bytes: Uint8Array): { key: string; from: bigint } {
  try {
    const { key, from } = JSON.parse(Buffer.from(bytes).toString("utf8")) as { key?: unknown; from?: unknown };
    if (typeof key === "string" && isOffset(from)) return { key, from: BigInt(from) };
  } catch {
    // reported below
  }
  throw new CorruptObject(objectKey, 'import key marker is not {"key", "from"} JSON');
}
