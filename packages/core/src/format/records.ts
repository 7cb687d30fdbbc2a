// The record codec of data objects, byte-compatible with the reference implementation:
// offset u64 | timestamp i64 | nonce u128 (all ones = none) | length u32 | value | total u32,
// little-endian, total = 36 + length so an object can be walked from its end too.

import { CorruptObject } from "../errors.ts";
import { type DataObjectName, U128_MAX } from "./layout.ts";

export const RECORD_HEADER_BYTES = 36;
export const RECORD_OVERHEAD_BYTES = RECORD_HEADER_BYTES + 4;
/** The nonce field value that means "no nonce". */
export const NO_NONCE = U128_MAX;

export interface Item {
  readonly offset: bigint;
  /** Milliseconds since the Unix epoch. */
  readonly timestamp: bigint;
  readonly nonce: bigint | undefined;
  readonly value: Uint8Array;
}

/** An item ready to be stored: offset, timestamp and nonce already decided. */
export type RecordInput = Item;

export function encodedSize(values: readonly { value: Uint8Array }[]): number {
  let size = 0;
  for (const v of values) size += RECORD_OVERHEAD_BYTES + v.value.byteLength;
  return size;
}

/** The nonce field of a record without a nonce, copied rather than computed per record. */
const NO_NONCE_FIELD = new Uint8Array(16).fill(0xff);

/** Serializes records into one freshly allocated buffer (one allocation per batch). */
export function encodeRecords(records: readonly RecordInput[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(encodedSize(records));
  writeRecords(out, 0, records);
  return out;
}

/**
 * Serializes records into `out` from byte `start` on (`encodedSize` bytes), and returns
 * where they end: a log segment writes its entries' records in place, with no copy.
 */
export function writeRecords(out: Uint8Array, start: number, records: readonly RecordInput[]): number {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let pos = start;
  for (const r of records) {
    view.setBigUint64(pos, r.offset, true);
    view.setBigInt64(pos + 8, r.timestamp, true);
    // Most items carry no nonce; splitting U128_MAX into halves would allocate two BigInts.
    if (r.nonce === undefined || r.nonce === NO_NONCE) out.set(NO_NONCE_FIELD, pos + 16);
    else {
      view.setBigUint64(pos + 16, BigInt.asUintN(64, r.nonce), true);
      view.setBigUint64(pos + 24, r.nonce >> 64n, true);
    }
    const length = r.value.byteLength;
    view.setUint32(pos + 32, length, true);
    out.set(r.value, pos + RECORD_HEADER_BYTES);
    pos += RECORD_HEADER_BYTES + length;
    view.setUint32(pos, RECORD_HEADER_BYTES + length, true);
    pos += 4;
  }
  return pos;
}

/**
 * Decodes every record of an object and checks it against what the object's name promises
 * (size, dense offsets, nonce range and order). Values are views into `bytes`.
 * A mismatch is data loss: it is reported naming the object, never returned as items.
 * Timestamps are not checked against the name: the reference names a merged object by its
 * first input's minimum and its last input's maximum, so items it wrote with timestamps
 * out of order lie outside that range (or the name says min > max) in intact objects.
 */
export function decodeRecords(
  objectKey: string,
  name: DataObjectName,
  bytes: Uint8Array,
  storedSize: number = bytes.byteLength,
): Item[] {
  const corrupt = (reason: string) => new CorruptObject(objectKey, reason);
  if (BigInt(storedSize) !== name.sizeBytes) {
    throw corrupt(`holds ${storedSize} bytes, its name says ${name.sizeBytes}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const items: Item[] = [];
  let pos = 0;
  let expectedOffset = name.firstOffset;
  let lastNonce = -1n;
  while (pos < bytes.byteLength) {
    if (pos + RECORD_OVERHEAD_BYTES > bytes.byteLength) {
      throw corrupt(`truncated record header at byte ${pos}`);
    }
    const offset = view.getBigUint64(pos, true);
    const timestamp = view.getBigInt64(pos + 8, true);
    const nonceRaw = view.getBigUint64(pos + 16, true) | (view.getBigUint64(pos + 24, true) << 64n);
    const length = view.getUint32(pos + 32, true);
    const valueStart = pos + RECORD_HEADER_BYTES;
    const valueEnd = valueStart + length;
    if (valueEnd + 4 > bytes.byteLength) throw corrupt(`record at byte ${pos} overruns the object`);
    if (view.getUint32(valueEnd, true) !== RECORD_HEADER_BYTES + length) {
      throw corrupt(`record at byte ${pos} has a bad trailing length`);
    }
    if (offset !== expectedOffset) throw corrupt(`expected offset ${expectedOffset}, found ${offset}`);
    const nonce = nonceRaw === NO_NONCE ? undefined : nonceRaw;
    if (nonce !== undefined) {
      if (nonce < name.firstNonce || nonce >= name.nextNonce || nonce <= lastNonce) {
        throw corrupt(`offset ${offset} has nonce ${nonce} outside the name's range or order`);
      }
      lastNonce = nonce;
    }
    items.push({ offset, timestamp, nonce, value: bytes.subarray(valueStart, valueEnd) });
    expectedOffset++;
    pos = valueEnd + 4;
  }
  if (expectedOffset !== name.lastOffset + 1n) {
    throw corrupt(`holds offsets up to ${expectedOffset - 1n}, its name says ${name.lastOffset}`);
  }
  return items;
}

/**
 * The stored records of `items` (ascending and consecutive) as one view of the object body
 * they were decoded from, without a copy: what a reader sends as packed items. Undefined
 * unless every item is the record right after the previous one in the same body, header
 * and trailer matching (items of two objects, or values from elsewhere): encode them then.
 */
export function storedRecords(items: readonly Item[]): Uint8Array | undefined {
  const first = items[0];
  if (!first) return new Uint8Array(0);
  const body = first.value.buffer;
  const start = first.value.byteOffset - RECORD_HEADER_BYTES;
  if (start < 0) return undefined;
  const view = new DataView(body);
  let pos = start;
  for (const item of items) {
    const length = item.value.byteLength;
    const end = pos + RECORD_OVERHEAD_BYTES + length;
    if (
      item.value.buffer !== body ||
      item.value.byteOffset !== pos + RECORD_HEADER_BYTES ||
      end > view.byteLength ||
      view.getUint32(pos + 32, true) !== length ||
      view.getUint32(end - 4, true) !== RECORD_HEADER_BYTES + length ||
      view.getBigUint64(pos, true) !== item.offset ||
      view.getBigInt64(pos + 8, true) !== item.timestamp ||
      !nonceFieldHolds(view, pos + 16, item.nonce)
    ) {
      return undefined;
    }
    pos = end;
  }
  return new Uint8Array(body, start, pos - start);
}

function nonceFieldHolds(view: DataView, at: number, nonce: bigint | undefined): boolean {
  const stored = view.getBigUint64(at, true) | (view.getBigUint64(at + 8, true) << 64n);
  return stored === (nonce ?? NO_NONCE);
}

/**
 * The items as views of one fresh records body, in the order given (records ascend by
 * offset in the body, as storedRecords wants them): a copy that keeps none of the bodies the
 * items were read from alive, and that is still sent packed without another copy.
 */
export function copyRecords(items: readonly Item[]): Item[] {
  const descending = items.length > 1 && (items[0] as Item).offset > (items.at(-1) as Item).offset;
  const ascending = descending ? items.toReversed() : items;
  const body = encodeRecords(ascending);
  let pos = 0;
  const copies = ascending.map((item) => {
    const value = body.subarray(pos + RECORD_HEADER_BYTES, pos + RECORD_HEADER_BYTES + item.value.byteLength);
    pos += RECORD_OVERHEAD_BYTES + item.value.byteLength;
    return { offset: item.offset, timestamp: item.timestamp, nonce: item.nonce, value };
  });
  return descending ? copies.reverse() : copies;
}
