// Compaction of a key's uncompacted objects into one larger immutable object, following the
// reference's rules: once the uncompacted objects hold compact_items_threshold items or
// compact_size_threshold bytes, they are merged and the merged object becomes the new
// watermark (it is "complete" and never merged again); reaching only
// compact_objects_threshold objects merges them but keeps them uncompacted. Objects that
// are complete on their own (a bulk import's batches) are never merged: at the start of the
// uncompacted ones, the watermark moves past them as they are, and an import may leave
// that move to its key's last batch (`holdWatermark`).
//
// Crash safety: the merged object is written before any input is deleted, and the
// watermark after the deletes. A crash in between leaves inputs that the merged object also
// holds; readers resolve the overlap (format/object-chain.ts) and the next writer deletes
// them. Sealed (empty) objects are never deleted: they keep a stalled writer's late write out.

import type { WriterConfig } from "../config.ts";
import { type Compression, type DataObjectName, itemCount, type KeyLayout } from "../format/layout.ts";
import type { DataObject } from "../format/object-chain.ts";
import { type ObjectStore, PreconditionFailed } from "../storage/object-store.ts";
import type { RecordCodecPool } from "../workers/codec-pool.ts";
import { writeDerivedObject } from "./fencing.ts";
import { encodeWatermark, type KeyState, listAll } from "./key-state.ts";

/**
 * Bodies of objects this writer stored recently, by object key: an object's bytes never
 * change, so a merge takes them from here instead of a GET (and takes them out, since
 * merging may hand the buffers to a worker thread).
 */
export interface RecentBodies {
  get(key: string): Uint8Array | undefined;
  set(key: string, body: Uint8Array): unknown;
  delete(key: string): unknown;
}

export type CompactionThresholds = Pick<
  WriterConfig,
  "compactItemsThreshold" | "compactSizeThreshold" | "compactObjectsThreshold"
>;

export interface CompactionDecision {
  readonly merge: boolean;
  readonly advanceWatermark: boolean;
}

export function decideCompaction(uncompacted: readonly DataObject[], t: CompactionThresholds): CompactionDecision {
  let items = 0n;
  let bytes = 0n;
  for (const o of uncompacted) {
    items += itemCount(o.name);
    bytes += o.name.sizeBytes;
  }
  const advanceWatermark = items >= BigInt(t.compactItemsThreshold) || bytes >= BigInt(t.compactSizeThreshold);
  const merge = advanceWatermark || uncompacted.length >= t.compactObjectsThreshold;
  return { merge: merge && uncompacted.length > 0, advanceWatermark };
}

/**
 * How many of the uncompacted objects, from the first, are complete on their own (each holds
 * the items or bytes of a threshold). Merging them would only rewrite them; the watermark
 * can move past them as they are. Only for uncompressed keyspaces, whose complete objects
 * compaction would otherwise rewrite compressed.
 */
export function leadingComplete(
  uncompacted: readonly DataObject[],
  t: CompactionThresholds,
  compression: Compression,
): number {
  if (compression !== "none") return 0;
  let n = 0;
  for (const o of uncompacted) {
    const complete =
      itemCount(o.name) >= BigInt(t.compactItemsThreshold) || o.name.sizeBytes >= BigInt(t.compactSizeThreshold);
    if (!complete) break;
    n++;
  }
  return n;
}

export function mergedName(inputs: readonly DataObject[], sizeBytes: bigint, compression: Compression): DataObjectName {
  const first = (inputs[0] as DataObject).name;
  const last = (inputs.at(-1) as DataObject).name;
  return {
    firstOffset: first.firstOffset,
    lastOffset: last.lastOffset,
    minTimestamp: first.minTimestamp,
    maxTimestamp: last.maxTimestamp,
    firstNonce: first.firstNonce,
    nextNonce: last.nextNonce,
    sizeBytes,
    priorStartOffset: first.priorStartOffset,
    compression,
  };
}

/**
 * A kept body proves nothing about storage: another writer (this one's cached state being
 * stale) may have compacted or trimmed the object away, and merging it again would bring
 * trimmed items back. One LIST stands for the GETs that would have found it gone.
 */
async function requireStored(store: ObjectStore, layout: KeyLayout, inputs: readonly DataObject[]): Promise<void> {
  const first = (inputs[0] as DataObject).name.firstOffset;
  const listed = new Set(
    (await listAll(store, layout.dataPrefix, layout.startAfterForFirstOffset(first))).map((o) => o.key),
  );
  for (const o of inputs) if (!listed.has(o.key)) throw new PreconditionFailed(o.key);
}

export interface CompactOptions {
  /**
   * When every uncompacted object is complete on its own, leave the watermark where it is:
   * a bulk import moves it once, with its key's last batch, rather than with each. A stale
   * watermark is still correct, it only lengthens the LIST that finds the key's tail.
   */
  readonly holdWatermark?: boolean;
}

/** Compacts a key if its thresholds say so; returns the state after. */
export async function compactKey(
  store: ObjectStore,
  layout: KeyLayout,
  initial: KeyState,
  thresholds: CompactionThresholds,
  compression: Compression,
  codec: RecordCodecPool,
  recent?: RecentBodies,
  options: CompactOptions = {},
): Promise<KeyState> {
  let state = initial;
  const complete = leadingComplete(state.uncompacted, thresholds, compression);
  if (complete > 0) {
    // Never merged, so their bodies are not needed for one.
    for (const o of state.uncompacted.slice(0, complete)) recent?.delete(o.key);
    if (complete === state.uncompacted.length && options.holdWatermark) return state;
    const newest = (state.uncompacted[complete - 1] as DataObject).name.firstOffset;
    await store.put(layout.watermarkKey, encodeWatermark(newest));
    state = { ...state, watermark: newest, uncompacted: state.uncompacted.slice(complete) };
  }
  const decision = decideCompaction(state.uncompacted, thresholds);
  if (!decision.merge) return state;
  const inputs = state.uncompacted;
  // A merged name promises dense offsets from its first input's to its last's: a gap in the
  // inputs (a state read from a LIST that missed one) would make it promise items it does
  // not hold, and recovery would then delete the real holder as a leftover. An input that
  // starts inside the one before and ends past it (a chain readers resolve, docs/format.md)
  // is merged as readers see it: the earlier object's items win (codec-tasks.ts).
  for (let i = 1; i < inputs.length; i++) {
    const before = inputs[i - 1] as DataObject;
    const input = inputs[i] as DataObject;
    const gap = input.name.firstOffset > before.name.lastOffset + 1n;
    const covered = input.name.lastOffset <= before.name.lastOffset;
    if (gap || covered) throw new PreconditionFailed(input.key);
  }
  let merged: DataObject;
  if (inputs.length === 1 && compression === "none") {
    merged = inputs[0] as DataObject; // nothing to merge: it only becomes complete
    recent?.delete(merged.key);
  } else {
    let keptAny = false;
    const bodies = await Promise.all(
      inputs.map(async (o) => {
        const kept = recent?.get(o.key);
        if (kept) {
          recent?.delete(o.key);
          keptAny = true;
          return kept;
        }
        const stored = await store.get(o.key);
        if (!stored) throw new PreconditionFailed(o.key); // compacted by another writer: re-read the key
        return stored.body;
      }),
    );
    if (keptAny) await requireStored(store, layout, inputs);
    const body = await codec.merge(
      inputs.map((o, i) => ({ key: o.key, name: o.name, stored: bodies[i] as Uint8Array })),
      compression,
    );
    // The same inputs merged by another writer give the same name and bytes.
    merged = await writeDerivedObject(store, layout, mergedName(inputs, BigInt(body.byteLength), compression), body);
    const output = merged.key;
    await store.delete(inputs.map((o) => o.key).filter((k) => k !== output));
    // Still uncompacted: the next merge takes it in again.
    if (!decision.advanceWatermark) recent?.set(output, body);
  }
  const newest = merged.name;
  const tail = { ...state.tail, newestStartOffset: newest.firstOffset };
  if (decision.advanceWatermark) {
    await store.put(layout.watermarkKey, encodeWatermark(newest.firstOffset));
    return { ...state, tail, watermark: newest.firstOffset, uncompacted: [] };
  }
  return { ...state, tail, uncompacted: [merged] };
}
