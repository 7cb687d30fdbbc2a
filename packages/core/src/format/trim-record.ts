// The trim record ({key folder}/trim): where a key's list now starts after a trim, and the
// key's end as it was then. Readers and writers need it only when a trim removed every
// item (the data objects that said where the list ends are gone): then it alone keeps
// offsets from being reused and nonces deduplicated (docs/format.md, "Trim").

import { CorruptObject } from "../errors.ts";

export interface TrimRecord {
  /** First offset still served: every item below it was trimmed. */
  readonly firstOffset: bigint;
  /** The key's next nonce when it was trimmed. */
  readonly nextNonce: bigint;
  /** The key's highest timestamp when it was trimmed (ms since epoch). */
  readonly lastTimestamp: bigint;
}

export const TRIM_RECORD_BYTES = 32;

export function encodeTrimRecord(record: TrimRecord): Uint8Array {
  const bytes = new Uint8Array(TRIM_RECORD_BYTES);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, record.firstOffset, true);
  view.setBigUint64(8, record.nextNonce & ((1n << 64n) - 1n), true);
  view.setBigUint64(16, record.nextNonce >> 64n, true);
  view.setBigInt64(24, record.lastTimestamp, true);
  return bytes;
}

export function decodeTrimRecord(objectKey: string, bytes: Uint8Array): TrimRecord {
  if (bytes.byteLength !== TRIM_RECORD_BYTES) {
    throw new CorruptObject(objectKey, `holds ${bytes.byteLength} bytes, a trim record is ${TRIM_RECORD_BYTES}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, TRIM_RECORD_BYTES);
  return {
    firstOffset: view.getBigUint64(0, true),
    nextNonce: view.getBigUint64(8, true) | (view.getBigUint64(16, true) << 64n),
    lastTimestamp: view.getBigInt64(24, true),
  };
}
