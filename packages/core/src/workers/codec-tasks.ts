// The CPU work of the writer, as plain functions: run inline or in piscina worker threads
// (codec-pool.ts). Inputs and outputs are ArrayBuffer-backed so they can be transferred.

import { decodeDataObject, encodeDataObject } from "../format/data-object.ts";
import type { Compression, DataObjectName } from "../format/layout.ts";
import type { RecordInput } from "../format/records.ts";

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
 * Merges data objects into one body. Every input is decoded and checked first, so a
 * corrupt object stops the compaction (data loss is reported) instead of spreading.
 */
export function mergeObjects(task: MergeTask): Uint8Array {
  const decoded = task.inputs.map((i) => decodeDataObject(i.key, i.name, i.stored));
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
