// The packed form of read items (ReadPageResponse.packed_items): one byte string holding a
// page's items in the store's own record layout, so a reader sends what it decoded from
// storage without building an Item message per item, and a client walks it with a DataView.
//   offset u64 | timestamp_millis i64 | nonce u128 (all ones = unset) | length u32 | value |
//   total u32 (= 36 + length), little-endian.

const HEADER_BYTES = 36;
const TRAILER_BYTES = 4;
const ALL_ONES_U32 = 0xffff_ffff;

export interface UnpackedItem {
  readonly offset: bigint;
  /** ms since the epoch. */
  readonly timestamp: bigint;
  readonly nonce: bigint | undefined;
  /** A view into the packed bytes (no copy). */
  readonly value: Uint8Array;
}

/** Malformed packed bytes (items, insertions or outcomes): refused whole, never read in part. */
export class PackedFormatError extends Error {
  override readonly name = "PackedFormatError";
}

/** Every item of `packed`, in order; throws PackedFormatError unless the records tile it exactly. */
export function unpackItems(packed: Uint8Array): UnpackedItem[] {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const items: UnpackedItem[] = [];
  let pos = 0;
  while (pos < packed.byteLength) {
    if (pos + HEADER_BYTES + TRAILER_BYTES > packed.byteLength) {
      throw new PackedFormatError(`packed items: truncated record at byte ${pos} of ${packed.byteLength}`);
    }
    const length = view.getUint32(pos + 32, true);
    const valueStart = pos + HEADER_BYTES;
    const valueEnd = valueStart + length;
    if (valueEnd + TRAILER_BYTES > packed.byteLength || view.getUint32(valueEnd, true) !== HEADER_BYTES + length) {
      throw new PackedFormatError(`packed items: record at byte ${pos} does not end where its length says`);
    }
    items.push({
      offset: view.getBigUint64(pos, true),
      timestamp: view.getBigInt64(pos + 8, true),
      nonce: readNonce(view, pos + 16),
      value: packed.subarray(valueStart, valueEnd),
    });
    pos = valueEnd + TRAILER_BYTES;
  }
  return items;
}

/** Most items carry no nonce: checking for all ones word by word allocates no BigInt. */
function readNonce(view: DataView, at: number): bigint | undefined {
  if (
    view.getUint32(at, true) === ALL_ONES_U32 &&
    view.getUint32(at + 4, true) === ALL_ONES_U32 &&
    view.getUint32(at + 8, true) === ALL_ONES_U32 &&
    view.getUint32(at + 12, true) === ALL_ONES_U32
  ) {
    return undefined;
  }
  return view.getBigUint64(at, true) | (view.getBigUint64(at + 8, true) << 64n);
}
