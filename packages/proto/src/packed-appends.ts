// The packed forms of appends (AppendRequest.packed_insertions and packed_outcomes): a
// request's insertions and their outcomes as one byte string each, so that neither side
// builds, encodes and decodes a message per item. Little-endian throughout.
//   insertion: length u32 | flags u8 | timestamp_millis i64 (flag 1) | nonce u128 (flag 2) | value
//   outcome:   offset u64 | timestamp_millis i64; offset 2^64-1 marks a dropped duplicate.

import { PackedFormatError } from "./packed-items.ts";

const TIMESTAMP_SET = 1;
const NONCE_SET = 2;
const KNOWN_FLAGS = TIMESTAMP_SET | NONCE_SET;
const DUPLICATE_OFFSET = (1n << 64n) - 1n;
const OUTCOME_BYTES = 16;
const U64_MASK = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const U128_LIMIT = 1n << 128n;

export interface PackedInsertion {
  readonly value: Uint8Array;
  readonly nonce?: bigint | undefined;
  /** ms since the epoch; unset takes the writer's clock. */
  readonly timestamp?: bigint | undefined;
}

/** An appended item's place, or undefined for an insertion dropped as a duplicate. */
export type PackedOutcome = { readonly offset: bigint; readonly timestamp: bigint } | undefined;

export function packInsertions(insertions: readonly PackedInsertion[]): Uint8Array<ArrayBuffer> {
  let size = 0;
  for (const [n, i] of insertions.entries()) {
    // Out of their fields' range, a timestamp or nonce would be stored as another number.
    if (i.timestamp !== undefined && (i.timestamp < I64_MIN || i.timestamp > I64_MAX)) {
      throw new RangeError(`insertion ${n}: timestamp ${i.timestamp} is outside int64`);
    }
    if (i.nonce !== undefined && (i.nonce < 0n || i.nonce >= U128_LIMIT)) {
      throw new RangeError(`insertion ${n}: nonce ${i.nonce} is outside uint128`);
    }
    size += 5 + (i.timestamp === undefined ? 0 : 8) + (i.nonce === undefined ? 0 : 16) + i.value.byteLength;
  }
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let pos = 0;
  for (const i of insertions) {
    view.setUint32(pos, i.value.byteLength, true);
    out[pos + 4] = (i.timestamp === undefined ? 0 : TIMESTAMP_SET) | (i.nonce === undefined ? 0 : NONCE_SET);
    pos += 5;
    if (i.timestamp !== undefined) {
      view.setBigInt64(pos, i.timestamp, true);
      pos += 8;
    }
    if (i.nonce !== undefined) {
      view.setBigUint64(pos, i.nonce & U64_MASK, true);
      view.setBigUint64(pos + 8, i.nonce >> 64n, true);
      pos += 16;
    }
    out.set(i.value, pos);
    pos += i.value.byteLength;
  }
  return out;
}

/**
 * Every insertion of `packed`, values as views; PackedFormatError unless they tile it
 * exactly, or past `maxCount` insertions (checked while reading: a message of millions of
 * empty insertions is refused before it costs millions of objects).
 */
export function unpackInsertions(packed: Uint8Array, maxCount = Number.POSITIVE_INFINITY): PackedInsertion[] {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const out: PackedInsertion[] = [];
  let pos = 0;
  const need = (bytes: number, what: string) => {
    if (pos + bytes > packed.byteLength) {
      throw new PackedFormatError(`packed insertions: insertion ${out.length} is cut short in its ${what}`);
    }
  };
  while (pos < packed.byteLength) {
    if (out.length >= maxCount) throw new PackedFormatError(`packed insertions: more than ${maxCount} insertions`);
    need(5, "header");
    const length = view.getUint32(pos, true);
    const flags = packed[pos + 4] as number;
    if ((flags & ~KNOWN_FLAGS) !== 0) {
      throw new PackedFormatError(`packed insertions: insertion ${out.length} has unknown flags ${flags}`);
    }
    pos += 5;
    let timestamp: bigint | undefined;
    if (flags & TIMESTAMP_SET) {
      need(8, "timestamp");
      timestamp = view.getBigInt64(pos, true);
      pos += 8;
    }
    let nonce: bigint | undefined;
    if (flags & NONCE_SET) {
      need(16, "nonce");
      nonce = view.getBigUint64(pos, true) | (view.getBigUint64(pos + 8, true) << 64n);
      pos += 16;
    }
    need(length, "value");
    out.push({ value: packed.subarray(pos, pos + length), nonce, timestamp });
    pos += length;
  }
  return out;
}

export function packOutcomes(outcomes: readonly PackedOutcome[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(outcomes.length * OUTCOME_BYTES);
  const view = new DataView(out.buffer);
  outcomes.forEach((o, n) => {
    view.setBigUint64(n * OUTCOME_BYTES, o ? o.offset : DUPLICATE_OFFSET, true);
    view.setBigInt64(n * OUTCOME_BYTES + 8, o ? o.timestamp : 0n, true);
  });
  return out;
}

export function unpackOutcomes(packed: Uint8Array): PackedOutcome[] {
  if (packed.byteLength % OUTCOME_BYTES !== 0) {
    throw new PackedFormatError(`packed outcomes: ${packed.byteLength} bytes is not a whole number of outcomes`);
  }
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const out: PackedOutcome[] = [];
  for (let at = 0; at < packed.byteLength; at += OUTCOME_BYTES) {
    const offset = view.getBigUint64(at, true);
    out.push(offset === DUPLICATE_OFFSET ? undefined : { offset, timestamp: view.getBigInt64(at + 8, true) });
  }
  return out;
}
