// Pure logic of one append: which insertions are duplicates, which offsets, timestamps and
// nonces the rest get, and what the object's name will say. No I/O, so it is unit-tested
// and property-tested against a model directly.

import type { LimitsConfig } from "../config.ts";
import { InvalidArgument } from "../errors.ts";
import { type Compression, type DataObjectName, I64_MAX, I64_MIN, U64_MAX } from "../format/layout.ts";
import { encodedSize, NO_NONCE, type RecordInput } from "../format/records.ts";

/** The largest nonce an insertion may carry: the key's next nonce is then 2^128-2. */
export const MAX_NONCE = NO_NONCE - 2n;

export interface Insertion {
  readonly value: Uint8Array;
  /** Exactly-once key: dropped as a duplicate if below the key's next nonce. */
  readonly nonce?: bigint | undefined;
  /** ms since epoch; missing takes the writer's clock. */
  readonly timestamp?: bigint | undefined;
}

export type ItemOutcome =
  | { readonly kind: "appended"; readonly offset: bigint; readonly timestamp: bigint }
  | { readonly kind: "duplicate" };

/** What a writer knows of a key's end; enough to plan the next append. */
export interface KeyTail {
  readonly nextOffset: bigint;
  readonly nextNonce: bigint;
  /** Highest timestamp stored so far; undefined for an empty key. */
  readonly lastTimestamp: bigint | undefined;
  /** First offset of the newest object (0 when there is none). */
  readonly newestStartOffset: bigint;
}

export interface AppendPlan {
  readonly outcomes: ItemOutcome[];
  readonly records: RecordInput[];
  /** Name of the object to write; undefined when every insertion was a duplicate. */
  readonly objectName: Omit<DataObjectName, "sizeBytes" | "compression"> | undefined;
  readonly tailAfter: KeyTail;
}

/**
 * Refuses an append the writer must not store: too many items, a value too large, a nonce
 * outside 0..2^128-3, a timestamp outside i64 or more than max_future_timestamp_millis
 * ahead of `now` (the writer's clock).
 */
export function validateInsertions(insertions: readonly Insertion[], limits: LimitsConfig, now: bigint): void {
  const latestTimestamp = now + BigInt(limits.maxFutureTimestampMillis);
  if (insertions.length > limits.maxItemsPerAppend) {
    throw new InvalidArgument(
      "items",
      `${insertions.length} items in one append, the limit is ${limits.maxItemsPerAppend}`,
    );
  }
  insertions.forEach((ins, i) => {
    if (!(ins.value instanceof Uint8Array)) throw new InvalidArgument(`items[${i}].value`, "must be bytes");
    if (ins.value.byteLength > limits.maxValueBytes) {
      throw new InvalidArgument(
        `items[${i}].value`,
        `${ins.value.byteLength} bytes, the limit is ${limits.maxValueBytes}`,
      );
    }
    // The key's next nonce becomes the nonce + 1, which must not be the reserved 2^128-1.
    if (ins.nonce !== undefined && (ins.nonce < 0n || ins.nonce > MAX_NONCE)) {
      throw new InvalidArgument(
        `items[${i}].nonce`,
        `${ins.nonce} is outside 0..2^128-3 (2^128-1 is reserved for "no nonce" and must never be a key's next nonce)`,
      );
    }
    if (ins.timestamp !== undefined && (ins.timestamp < I64_MIN || ins.timestamp > I64_MAX)) {
      throw new InvalidArgument(`items[${i}].timestamp`, `${ins.timestamp} is outside the signed 64-bit range`);
    }
    if (ins.timestamp !== undefined && ins.timestamp > latestTimestamp) {
      throw new InvalidArgument(
        `items[${i}].timestamp`,
        `${ins.timestamp} is more than max_future_timestamp_millis (${limits.maxFutureTimestampMillis} ms) ahead of the writer's clock (${now}); timestamps never decrease along a key, so it would stamp every later item`,
      );
    }
  });
}

/**
 * Plans an append. Timestamps are kept non-decreasing per key (a lower one is raised to the
 * key's last), so every object's name bounds a monotone range and timestamp seeks are exact.
 */
export function planAppend(tail: KeyTail, insertions: readonly Insertion[], now: bigint): AppendPlan {
  const outcomes: ItemOutcome[] = [];
  const records: RecordInput[] = [];
  let nextOffset = tail.nextOffset;
  let nextNonce = tail.nextNonce;
  let lastTimestamp = tail.lastTimestamp;
  let firstNonce: bigint | undefined;
  for (const ins of insertions) {
    if (ins.nonce !== undefined) {
      if (ins.nonce < nextNonce) {
        outcomes.push({ kind: "duplicate" });
        continue;
      }
      firstNonce ??= ins.nonce;
      nextNonce = ins.nonce + 1n;
    }
    if (nextOffset > U64_MAX) throw new InvalidArgument("items", "the key has used every 64-bit offset");
    let timestamp = ins.timestamp ?? now;
    if (lastTimestamp !== undefined && timestamp < lastTimestamp) timestamp = lastTimestamp;
    lastTimestamp = timestamp;
    records.push({ offset: nextOffset, timestamp, nonce: ins.nonce, value: ins.value });
    outcomes.push({ kind: "appended", offset: nextOffset, timestamp });
    nextOffset++;
  }
  const first = records[0];
  const last = records.at(-1);
  if (!first || !last) return { outcomes, records, objectName: undefined, tailAfter: tail };
  return {
    outcomes,
    records,
    objectName: {
      firstOffset: first.offset,
      lastOffset: last.offset,
      minTimestamp: first.timestamp,
      maxTimestamp: last.timestamp,
      firstNonce: firstNonce ?? tail.nextNonce,
      nextNonce,
      priorStartOffset: tail.newestStartOffset,
    },
    tailAfter: { nextOffset, nextNonce, lastTimestamp, newestStartOffset: first.offset },
  };
}
