// A writer's knowledge of one key, and how it is recovered from storage on a cache miss:
// GET the watermark, LIST the data objects from it (a handful, bounded by compaction), then
// LIST the claims at the next offset to seal a batch a crashed writer left half-done (one
// LIST of the key's folder does both for a key without a watermark).

import { CorruptObject } from "../errors.ts";
import { type KeyLayout, timestampsOrdered } from "../format/layout.ts";
import { type DataObject, parseListing, resolveChain } from "../format/object-chain.ts";
import { decodeTrimRecord, type TrimRecord } from "../format/trim-record.ts";
import type { ListedObject, ObjectStore } from "../storage/object-store.ts";
import type { KeyTail } from "./append-plan.ts";

export interface KeyState {
  tail: KeyTail;
  /** Generation of the claim to take at tail.nextOffset (above 0 after a seal). */
  claimGeneration: number;
  /** First offset of the newest compacted object; undefined before the first compaction. */
  watermark: bigint | undefined;
  /** Chain objects not yet compacted, ascending (excludes the object at the watermark). */
  uncompacted: DataObject[];
}

export const WATERMARK_BYTES = 8;

export function encodeWatermark(offset: bigint): Uint8Array {
  const bytes = new Uint8Array(WATERMARK_BYTES);
  new DataView(bytes.buffer).setBigUint64(0, offset, true);
  return bytes;
}

export async function readWatermark(store: ObjectStore, layout: KeyLayout): Promise<bigint | undefined> {
  const obj = await store.get(layout.watermarkKey);
  if (!obj) return undefined;
  if (obj.body.byteLength !== WATERMARK_BYTES) {
    throw new CorruptObject(
      layout.watermarkKey,
      `holds ${obj.body.byteLength} bytes, a watermark is ${WATERMARK_BYTES}`,
    );
  }
  return new DataView(obj.body.buffer, obj.body.byteOffset, WATERMARK_BYTES).getBigUint64(0, true);
}

/** Every object under `prefix` after `startAfter`, across LIST pages. */
export async function listAll(store: ObjectStore, prefix: string, startAfter: string): Promise<ListedObject[]> {
  const all: ListedObject[] = [];
  let after = startAfter;
  for (;;) {
    const page = await store.list(prefix, { startAfter: after });
    all.push(...page.objects);
    const last = page.objects.at(-1);
    if (!page.truncated || !last) return all;
    after = last.key;
  }
}

export interface RecoveredTail {
  readonly watermark: bigint | undefined;
  /** The chain from the watermark's object (inclusive) to the newest object. */
  readonly chain: DataObject[];
  readonly leftovers: DataObject[];
  /** Read only when the chain is empty while a watermark exists: a trim removed every item. */
  readonly trimmed?: TrimRecord | undefined;
}

/** Reads a key's tail: the watermark and the objects from it on (used by writer and reader). */
export async function readTail(store: ObjectStore, layout: KeyLayout): Promise<RecoveredTail> {
  return tailFromWatermark(store, layout, await readWatermark(store, layout));
}

export interface Claim {
  readonly key: string;
  readonly generation: number;
}

/**
 * The claims at a key's end (from a LIST of its data objects), newest generation last, and
 * whether any claim lies beyond it. A claim is only ever taken at the offset after a
 * committed batch, so one beyond the end proves the LIST missed committed objects (it
 * overlapped a compaction replacing them): the end is not to be trusted.
 */
export interface ClaimsAtEnd {
  readonly claims: Claim[];
  readonly beyond: boolean;
}

/**
 * A writer's recovery reads: the key's tail and the claims at its end. One LIST of the
 * key's whole folder usually answers both (a GET adds the watermark's value when the folder
 * has one): a new key costs one LIST, a key of a few hundred batches a LIST and a GET. Only
 * a folder beyond one LIST page (over 1,000 objects, claims included) is read as the reader
 * reads it, the watermark first and then a LIST from it, plus a LIST of the claims at its end.
 */
export async function readTailAndClaims(
  store: ObjectStore,
  layout: KeyLayout,
): Promise<{ tail: RecoveredTail } & ClaimsAtEnd> {
  const folder = await store.list(layout.folder);
  if (!folder.truncated) {
    const watermark = folder.objects.some((o) => o.key === layout.watermarkKey)
      ? await readWatermark(store, layout)
      : undefined;
    // A LIST is in byte order, so the data objects among the folder's are too.
    const start = layout.startAfterForFirstOffset(watermark ?? 0n);
    const data = folder.objects.filter((o) => o.key.startsWith(layout.dataPrefix) && o.key > start);
    const tail = await tailOf(store, layout, watermark, data);
    return { tail, ...claimsAtEnd(layout, folder.objects, stateFromTail(tail, 0).tail.nextOffset) };
  }
  const tail = await tailFromWatermark(store, layout, await readWatermark(store, layout));
  return { tail, ...(await listClaimsAt(store, layout, stateFromTail(tail, 0).tail.nextOffset)) };
}

async function tailFromWatermark(
  store: ObjectStore,
  layout: KeyLayout,
  watermark: bigint | undefined,
): Promise<RecoveredTail> {
  const listed = await listAll(store, layout.dataPrefix, layout.startAfterForFirstOffset(watermark ?? 0n));
  return tailOf(store, layout, watermark, listed);
}

/** The tail from the data objects listed from the watermark on. */
async function tailOf(
  store: ObjectStore,
  layout: KeyLayout,
  watermark: bigint | undefined,
  listed: readonly ListedObject[],
): Promise<RecoveredTail> {
  const { chain, leftovers } = resolveChain(parseListing(layout, listed));
  // A key that never had items has no watermark, so only emptied keys pay this GET.
  const trimmed = chain.length === 0 && watermark !== undefined ? await readTrimRecord(store, layout) : undefined;
  if (trimmed && watermark !== undefined && watermark > 0n) {
    // A trim that empties a key points the watermark at its end marker, at offset 1, above
    // an object starting at 0 that another process's compaction may have written during
    // the trim (docs/format.md, "Trim"). Such an object, if it ends at or past the trim
    // point, holds the key's end; below an emptied key's watermark lie only the trim's
    // undeleted leftovers otherwise, so this LIST is short.
    const below = listAll(store, layout.dataPrefix, layout.startAfterForFirstOffset(0n));
    const hidden = resolveChain(parseListing(layout, await below)).chain.filter(
      (o) => o.name.lastOffset >= trimmed.firstOffset,
    );
    if (hidden.length > 0) return { watermark, chain: hidden, leftovers: [] };
  }
  return { watermark, chain, leftovers, trimmed };
}

export async function readTrimRecord(store: ObjectStore, layout: KeyLayout): Promise<TrimRecord | undefined> {
  const obj = await store.get(layout.trimKey);
  return obj ? decodeTrimRecord(layout.trimKey, obj.body) : undefined;
}

export function stateFromTail(tail: RecoveredTail, claimGeneration: number): KeyState {
  const newest = tail.chain.at(-1);
  const uncompacted = tail.chain.filter((o) => tail.watermark === undefined || o.name.firstOffset > tail.watermark);
  const emptied = tail.trimmed;
  return {
    tail: newest
      ? {
          nextOffset: newest.name.lastOffset + 1n,
          nextNonce: newest.name.nextNonce,
          // An out-of-order name (minTs > maxTs, written by the reference) holds both.
          lastTimestamp: timestampsOrdered(newest.name) ? newest.name.maxTimestamp : newest.name.minTimestamp,
          newestStartOffset: newest.name.firstOffset,
        }
      : emptied
        ? {
            nextOffset: emptied.firstOffset,
            nextNonce: emptied.nextNonce,
            lastTimestamp: emptied.lastTimestamp,
            newestStartOffset: emptied.firstOffset,
          }
        : { nextOffset: 0n, nextNonce: 0n, lastTimestamp: undefined, newestStartOffset: 0n },
    claimGeneration,
    watermark: tail.watermark,
    uncompacted,
  };
}

/** The claims from `offset` on, as the claims at a key's end that `offset` is. */
export async function listClaimsAt(store: ObjectStore, layout: KeyLayout, offset: bigint): Promise<ClaimsAtEnd> {
  const listed = await listAll(store, layout.claimPrefix, layout.claimKey(offset, 0).replace(/_g0$/, ""));
  return claimsAtEnd(layout, listed, offset);
}

function claimsAtEnd(layout: KeyLayout, listed: readonly ListedObject[], offset: bigint): ClaimsAtEnd {
  const parsed = listed.map((o) => ({ key: o.key, parsed: layout.parseClaimKey(o.key) }));
  const claims = parsed
    .filter((c) => c.parsed?.offset === offset)
    .map((c) => ({ key: c.key, generation: c.parsed?.generation ?? 0 }))
    .sort((a, b) => a.generation - b.generation);
  return { claims, beyond: parsed.some((c) => c.parsed !== undefined && c.parsed.offset > offset) };
}
