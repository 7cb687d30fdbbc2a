// Proto messages <-> engine values for the reader.

import { create } from "@bufbuild/protobuf";
import {
  encodeRecords,
  InvalidArgument,
  type Item,
  type ItemFilter,
  type IterationOrder,
  type KeyMetadata,
  storedRecords,
} from "@klstore/core";
import {
  fromUint128,
  type ItemFilter as ItemFilterMessage,
  type Item as ItemMessage,
  ItemSchema,
  type KeyMetadata as KeyMetadataMessage,
  KeyMetadataSchema,
  Order,
  toUint128,
} from "@klstore/proto";

export function toOrder(order: Order): IterationOrder {
  if (order === Order.BACKWARDS) return "backwards";
  if (order === Order.FORWARDS || order === Order.UNSPECIFIED) return "forwards";
  // Reading forwards on a value from a newer API would answer a different question.
  throw new InvalidArgument("order", `${order} is not a known Order value`);
}

/** The engine's names of page request fields (SPEC.md's) that the API names otherwise. */
const FILTER_FIELDS: Record<string, string> = { "filter.start_timestamp": "filter.start_timestamp_millis" };

/**
 * An engine error in the request's terms: the engine's `max_size` is ReadPage's
 * `max_items` and ReadStream's `page_size`, its `filter.start_timestamp` the filter's
 * `start_timestamp_millis`.
 */
export function inRequestFields(err: unknown, pageSizeField: "max_items" | "page_size"): unknown {
  if (!(err instanceof InvalidArgument)) return err;
  const field = err.field === "max_size" ? pageSizeField : FILTER_FIELDS[err.field];
  return field === undefined ? err : new InvalidArgument(field, err.reason);
}

export function toFilter(filter: ItemFilterMessage | undefined): ItemFilter | undefined {
  if (!filter) return undefined;
  return {
    startOffset: filter.startOffset,
    startTimestamp: filter.startTimestampMillis,
    startNonce: fromUint128(filter.startNonce),
  };
}

/**
 * Most bytes an item takes on the wire besides its value: as an Item message, its own tag
 * and length (6), offset and timestamp (11 each), nonce (2 + 22) and the value's tag and
 * length (6), 58 in all; packed, a record's 40 bytes of header and trailer.
 */
export const ITEM_FRAMING_BYTES = 64;

/** What a page's items take in a message: their values and, at most, their framing. */
export function messageBytes(items: readonly Item[]): number {
  let bytes = items.length * ITEM_FRAMING_BYTES;
  for (const item of items) bytes += item.value.byteLength;
  return bytes;
}

/**
 * A page's items as the response fields carry them: packed when the client asked for it
 * (no message per item to build and encode here, nor to decode there), as Item messages
 * otherwise. Packed records ascend whichever the order, so that a page within one object
 * is a view of its stored bytes, sent without a copy.
 */
export function toItemFields(
  items: readonly Item[],
  order: IterationOrder,
  packed: boolean,
): { items: ItemMessage[]; packedItems?: Uint8Array } {
  if (!packed) return { items: toItemMessages(items) };
  const ascending = order === "forwards" ? items : items.toReversed();
  return { items: [], packedItems: storedRecords(ascending) ?? encodeRecords(ascending) };
}

/**
 * A page's items split where they move from one stored object body to another, in the
 * order read: each run is a view of its object's records (toItemFields sends it without
 * encoding), where a page across two objects would have been encoded again whole. A
 * stream sends a message per run; a page answer cannot be split.
 */
export function storedRuns(items: readonly Item[]): Item[][] {
  const runs: Item[][] = [];
  let run: Item[] = [];
  for (const item of items) {
    if (run.length > 0 && run[0]?.value.buffer !== item.value.buffer) {
      runs.push(run);
      run = [];
    }
    run.push(item);
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

function toItemMessages(items: readonly Item[]): ItemMessage[] {
  return items.map((i) =>
    create(ItemSchema, { offset: i.offset, timestampMillis: i.timestamp, nonce: toUint128(i.nonce), value: i.value }),
  );
}

export function toKeyMetadataMessage(m: KeyMetadata): KeyMetadataMessage {
  return create(KeyMetadataSchema, {
    firstOffset: m.firstOffset,
    nextOffset: m.nextOffset,
    nextNonce: toUint128(m.nextNonce),
    itemCount: m.itemCount,
    minTimestampMillis: m.minTimestamp,
    maxTimestampMillis: m.maxTimestamp,
  });
}
