// The CPU work of the writer, as plain functions: run inline or in piscina worker threads
// (codec-pool.ts). Inputs and outputs are ArrayBuffer-backed so they can be transferred.

import { CorruptObject } from "../errors.ts";
import { decodeDataObject, encodeDataObject } from "../format/data-object.ts";
import type { Compression, DataObjectName } from "../format/layout.ts";
import type { Item, RecordInput } from "../format/records.ts";

export interface EncodeTask {
  readonly records: readonly RecordInput[];
  readonly compression: Compression;
}

export interface MergeInput {
  readonly key: string;
  readonly name: DataObjectName;
  readonly stored: Uint8Array;
}

export interface MergeTask {
  readonly inputs: readonly MergeInput[];
  readonly compression: Compression;
}

export function encodeBatch(task: EncodeTask): Uint8Array {
  return encodeDataObject(task.records, task.compression);
}

/**
 * Merges data objects (ascending, each ending past the one before) into one body. Every
 * input is decoded and checked first, so a corrupt object stops the compaction (data loss
 * is reported) instead of spreading. Where an input starts inside the one before, its
 * items already held are dropped: the earlier object's win, as for readers.
 */
export function mergeObjects(task: MergeTask): Uint8Array {
  const decoded = task.inputs.map((i) => decodeDataObject(i.key, i.name, i.stored));
  const overlapping = task.inputs.some((input, n) => n > 0 && input.name.firstOffset <= prevLast(task.inputs, n));
  if (overlapping) {
    const items = decoded.flatMap((records, n) =>
      n === 0 ? records : records.filter((r) => r.offset > prevLast(task.inputs, n)),
    );
    checkJoined(task.inputs, items);
    return encodeDataObject(items, task.compression);
  }
  if (task.compression === "none" && task.inputs.every((i) => i.name.compression === "none")) {
    // Records are self-delimiting: the merged object is the inputs back to back.
    const out = new Uint8Array(task.inputs.reduce((n, i) => n + i.stored.byteLength, 0));
    let pos = 0;
    for (const i of task.inputs) {
      out.set(i.stored, pos);
      pos += i.stored.byteLength;
    }
    return out;
  }
  return encodeDataObject(decoded.flat(), task.compression);
}

function prevLast(inputs: readonly MergeInput[], n: number): bigint {
  return (inputs[n - 1] as MergeInput).name.lastOffset;
}

/**
 * The items kept from overlapping inputs must still make one valid object: timestamps
 * non-decreasing, nonces increasing. Objects that disagree there hold other items at the
 * same offsets (a stale writer's), and are left for readers to resolve, not merged.
 */
function checkJoined(inputs: readonly MergeInput[], items: readonly Item[]): void {
  let lastTimestamp: bigint | undefined;
  let lastNonce = -1n;
  for (const item of items) {
    const clash =
      (lastTimestamp !== undefined && item.timestamp < lastTimestamp) ||
      (item.nonce !== undefined && item.nonce <= lastNonce);
    if (clash) {
      const holder = inputs.find((i) => i.name.firstOffset <= item.offset && item.offset <= i.name.lastOffset);
      throw new CorruptObject(
        holder?.key ?? "(merge)",
        `overlaps the object before it with items that do not follow on (offset ${item.offset}); not merged`,
      );
    }
    lastTimestamp = item.timestamp;
    if (item.nonce !== undefined) lastNonce = item.nonce;
  }
}
