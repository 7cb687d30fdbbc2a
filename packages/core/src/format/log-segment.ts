// The codec of log segments (docs/log.md, "Segment format"). A segment is one flush of one
// log: a fixed header, an index (the log's state and every entry's fields), then the
// entries' records back to back, each entry's run laid out exactly as a data object's body.
// Header and index come first so a reader gets them with one ranged GET; an entry's records
// are one more. Pure: no I/O.

import { crc32c } from "@node-rs/crc32";
import { CorruptObject } from "../errors.ts";
import type { DataObjectName } from "./layout.ts";
import { encodedSize, type RecordInput, writeRecords } from "./records.ts";

const MAGIC = Buffer.from("KLSEG001", "latin1");
/** magic | seq u64 | created_millis i64 | flags u16 | lane u16 | index_bytes u32 | index_crc32c u32 */
export const SEGMENT_HEADER_BYTES = 8 + 8 + 8 + 2 + 2 + 4 + 4;

/** What kind of segment: data (entries, state), or a fence written into a log. */
export type SegmentKind = "data" | "takeover-fence" | "restart-fence";
const KIND_FLAGS: Record<SegmentKind, number> = { data: 0, "takeover-fence": 1, "restart-fence": 2 };

/** A log: a writer's name and one of its lanes. */
export interface LogId {
  readonly writer: string;
  readonly lane: number;
}

/** How far a slot's entries in a source log are materialized (sequence numbers through). */
export interface SlotProgress {
  readonly slot: number;
  readonly source: LogId;
  readonly through: bigint;
}

/** In a takeover fence: a slot the fenced log gives up, to whom, under which record version. */
export interface FencedSlot {
  readonly slot: number;
  readonly by: LogId;
  readonly recordVersion: bigint;
}

/** One key's batch: the fields of a data object's name, and where its records are. */
export interface SegmentEntry {
  readonly slot: number;
  readonly keyspace: string;
  readonly key: string;
  /** Name fields of the batch as a data object (sizeBytes = the records' bytes). */
  readonly name: Omit<DataObjectName, "compression" | "generation">;
  /** Byte offset of the records from the start of the segment's body. */
  readonly bodyOffset: number;
  readonly bodyBytes: number;
  readonly bodyCrc32c: number;
}

export interface SegmentIndex {
  readonly seq: bigint;
  readonly createdMillis: bigint;
  readonly kind: SegmentKind;
  readonly log: LogId;
  readonly progress: readonly SlotProgress[];
  readonly fenced: readonly FencedSlot[];
  readonly entries: readonly SegmentEntry[];
  /** Where the body starts in the segment (header and index bytes). */
  readonly bodyStart: number;
}

/** An entry to write: its records, as planned; the codec lays them out and fills the rest. */
export interface EntryInput {
  readonly slot: number;
  readonly keyspace: string;
  readonly key: string;
  readonly name: Omit<DataObjectName, "compression" | "generation" | "sizeBytes">;
  readonly records: readonly RecordInput[];
}

export interface SegmentInput {
  readonly seq: bigint;
  readonly createdMillis: bigint;
  readonly kind: SegmentKind;
  readonly log: LogId;
  readonly progress?: readonly SlotProgress[];
  readonly fenced?: readonly FencedSlot[];
  readonly entries?: readonly EntryInput[];
}

const U64_MASK = (1n << 64n) - 1n;

/** Appends fields to a growing index; strings are u16 length + UTF-8. */
class IndexWriter {
  private buf = Buffer.alloc(4096);
  private pos = 0;

  private ensure(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const grown = Buffer.alloc(Math.max(this.buf.length * 2, this.pos + bytes));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
  u16(v: number): void {
    this.ensure(2);
    this.pos = this.buf.writeUInt16LE(v, this.pos);
  }
  u32(v: number): void {
    this.ensure(4);
    this.pos = this.buf.writeUInt32LE(v >>> 0, this.pos);
  }
  u64(v: bigint): void {
    this.ensure(8);
    this.pos = this.buf.writeBigUInt64LE(v, this.pos);
  }
  i64(v: bigint): void {
    this.ensure(8);
    this.pos = this.buf.writeBigInt64LE(v, this.pos);
  }
  u128(v: bigint): void {
    this.u64(v & U64_MASK);
    this.u64(v >> 64n);
  }
  string(s: string): void {
    const bytes = Buffer.byteLength(s, "utf8");
    if (bytes > 0xffff) throw new RangeError(`a segment string holds at most 65535 bytes, not ${bytes}`);
    this.u16(bytes);
    this.ensure(bytes);
    this.pos += this.buf.write(s, this.pos, "utf8");
  }
  log(id: LogId): void {
    this.string(id.writer);
    this.u16(id.lane);
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** Lays a segment out in one allocation: header, index, then every entry's records in place. */
export function encodeSegment(input: SegmentInput): Uint8Array {
  const entries = input.entries ?? [];
  const sizes = entries.map((e) => encodedSize(e.records));
  const index = new IndexWriter();
  index.log(input.log);
  index.u32(input.progress?.length ?? 0);
  for (const p of input.progress ?? []) {
    index.u16(p.slot);
    index.log(p.source);
    index.u64(p.through);
  }
  index.u32(input.fenced?.length ?? 0);
  for (const f of input.fenced ?? []) {
    index.u16(f.slot);
    index.log(f.by);
    index.u64(f.recordVersion);
  }
  // The body CRCs are known only once the records are laid out: their slots are patched after.
  index.u32(entries.length);
  const crcSlots: number[] = [];
  let bodyOffset = 0;
  entries.forEach((e, i) => {
    const bytes = sizes[i] as number;
    index.u16(e.slot);
    index.string(e.keyspace);
    index.string(e.key);
    index.u32(bodyOffset);
    index.u32(bytes);
    crcSlots.push(index.bytes().length);
    index.u32(0);
    index.u64(e.name.firstOffset);
    index.u64(e.name.lastOffset);
    index.i64(e.name.minTimestamp);
    index.i64(e.name.maxTimestamp);
    index.u128(e.name.firstNonce);
    index.u128(e.name.nextNonce);
    index.u64(e.name.priorStartOffset);
    bodyOffset += bytes;
  });
  const indexBytes = index.bytes();
  const bodyStart = SEGMENT_HEADER_BYTES + indexBytes.length;
  const out = Buffer.alloc(bodyStart + bodyOffset);
  indexBytes.copy(out, SEGMENT_HEADER_BYTES);
  let pos = bodyStart;
  entries.forEach((e, i) => {
    const end = writeRecords(out, pos, e.records);
    out.writeUInt32LE(crc32c(out.subarray(pos, end)) >>> 0, SEGMENT_HEADER_BYTES + (crcSlots[i] as number));
    pos = end;
  });
  MAGIC.copy(out, 0);
  out.writeBigUInt64LE(input.seq, 8);
  out.writeBigInt64LE(input.createdMillis, 16);
  out.writeUInt16LE(KIND_FLAGS[input.kind], 24);
  out.writeUInt16LE(input.log.lane, 26);
  out.writeUInt32LE(indexBytes.length, 28);
  out.writeUInt32LE(headAndIndexCrc(out, bodyStart), 32);
  return out;
}

/** CRC32C of the header (but its own field) and the index: a flip anywhere in them shows. */
function headAndIndexCrc(buf: Buffer, bodyStart: number): number {
  const head = crc32c(buf.subarray(0, 32));
  return crc32c(buf.subarray(SEGMENT_HEADER_BYTES, bodyStart), head) >>> 0;
}

/** How many bytes from the segment's start hold its header and index (from the header alone). */
export function segmentIndexEnd(objectKey: string, head: Uint8Array): number {
  const buf = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (buf.length < SEGMENT_HEADER_BYTES || !buf.subarray(0, 8).equals(MAGIC)) {
    throw new CorruptObject(objectKey, "not a klstore log segment (bad magic)");
  }
  return SEGMENT_HEADER_BYTES + buf.readUInt32LE(28);
}

/** Reads fields in the order IndexWriter wrote them; any overrun is a corrupt segment. */
class IndexReader {
  private pos: number;
  private readonly buf: Buffer;
  private readonly end: number;
  private readonly objectKey: string;

  constructor(objectKey: string, buf: Buffer, start: number, end: number) {
    this.objectKey = objectKey;
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }
  private take(bytes: number): number {
    const at = this.pos;
    if (at + bytes > this.end) throw new CorruptObject(this.objectKey, `segment index overruns at byte ${at}`);
    this.pos += bytes;
    return at;
  }
  u16(): number {
    return this.buf.readUInt16LE(this.take(2));
  }
  u32(): number {
    return this.buf.readUInt32LE(this.take(4));
  }
  u64(): bigint {
    return this.buf.readBigUInt64LE(this.take(8));
  }
  i64(): bigint {
    return this.buf.readBigInt64LE(this.take(8));
  }
  u128(): bigint {
    const low = this.u64();
    return low | (this.u64() << 64n);
  }
  string(): string {
    const bytes = this.u16();
    const at = this.take(bytes);
    return this.buf.toString("utf8", at, at + bytes);
  }
  log(): LogId {
    const writer = this.string();
    return { writer, lane: this.u16() };
  }
  /** A count of records of at least `minBytes` each, refused if they cannot fit what is left. */
  count(minBytes: number): number {
    const n = this.u32();
    if (n * minBytes > this.end - this.pos)
      throw new CorruptObject(this.objectKey, `segment index claims ${n} records`);
    return n;
  }
  done(): boolean {
    return this.pos === this.end;
  }
}

/**
 * Decodes a segment's header and index from its first bytes (at least `segmentIndexEnd`),
 * checking the index's CRC32C and that every entry lies within `objectBytes` when known.
 */
export function decodeSegmentIndex(objectKey: string, head: Uint8Array, objectBytes?: number): SegmentIndex {
  const buf = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  const bodyStart = segmentIndexEnd(objectKey, buf);
  const corrupt = (reason: string) => new CorruptObject(objectKey, reason);
  if (buf.length < bodyStart) throw corrupt(`holds ${buf.length} bytes, its index ends at ${bodyStart}`);
  if (headAndIndexCrc(buf, bodyStart) !== buf.readUInt32LE(32)) throw corrupt("segment index fails its CRC32C");
  const flags = buf.readUInt16LE(24);
  const kind = (Object.keys(KIND_FLAGS) as SegmentKind[]).find((k) => KIND_FLAGS[k] === flags);
  if (!kind) throw corrupt(`unknown segment flags ${flags}`);
  const r = new IndexReader(objectKey, buf, SEGMENT_HEADER_BYTES, bodyStart);
  const log = r.log();
  if (log.lane !== buf.readUInt16LE(26)) throw corrupt("segment header and index disagree on the lane");
  const progress = Array.from({ length: r.count(14) }, () => ({ slot: r.u16(), source: r.log(), through: r.u64() }));
  const fenced = Array.from({ length: r.count(14) }, () => ({ slot: r.u16(), by: r.log(), recordVersion: r.u64() }));
  const entries: SegmentEntry[] = [];
  let expectedOffset = 0;
  for (let i = r.count(90); i > 0; i--) {
    const slot = r.u16();
    const keyspace = r.string();
    const key = r.string();
    const bodyOffset = r.u32();
    const bodyBytes = r.u32();
    const bodyCrc32c = r.u32();
    const name = {
      firstOffset: r.u64(),
      lastOffset: r.u64(),
      minTimestamp: r.i64(),
      maxTimestamp: r.i64(),
      firstNonce: r.u128(),
      nextNonce: r.u128(),
      priorStartOffset: r.u64(),
      sizeBytes: BigInt(bodyBytes),
    };
    if (bodyOffset !== expectedOffset)
      throw corrupt(`entry ${entries.length} starts at ${bodyOffset}, not ${expectedOffset}`);
    if (name.lastOffset < name.firstOffset) throw corrupt(`entry ${entries.length} ends before it starts`);
    expectedOffset += bodyBytes;
    entries.push({ slot, keyspace, key, name, bodyOffset, bodyBytes, bodyCrc32c });
  }
  if (!r.done()) throw corrupt("segment index has bytes after its last entry");
  if (objectBytes !== undefined && objectBytes !== bodyStart + expectedOffset) {
    throw corrupt(`holds ${objectBytes} bytes, its index says ${bodyStart + expectedOffset}`);
  }
  return {
    seq: buf.readBigUInt64LE(8),
    createdMillis: buf.readBigInt64LE(16),
    kind,
    log,
    progress,
    fenced,
    entries,
    bodyStart,
  };
}

/** Where an entry's records lie in the segment object: [start, end). */
export function entryRange(index: SegmentIndex, entry: SegmentEntry): { start: number; end: number } {
  const start = index.bodyStart + entry.bodyOffset;
  return { start, end: start + entry.bodyBytes };
}

/** An entry's records from bytes read at its range, checked against the index's CRC32C. */
export function checkEntryBody(objectKey: string, entry: SegmentEntry, body: Uint8Array): Uint8Array {
  if (
    body.byteLength !== entry.bodyBytes ||
    crc32c(Buffer.from(body.buffer, body.byteOffset, body.byteLength)) >>> 0 !== entry.bodyCrc32c
  ) {
    throw new CorruptObject(objectKey, `entry of key ${JSON.stringify(entry.key)} fails its CRC32C`);
  }
  return body;
}
