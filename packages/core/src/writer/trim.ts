// Trimming a key's list below an offset (docs/format.md, "Trim"). The steps are ordered so
// a reader racing a trim always sees one contiguous run of items:
//   1. the trim record, so a key emptied by the trim keeps its next offset and nonce;
//   2. the kept suffix of the object the trim point falls inside, as a new object starting
//      exactly at the trim point (the old one still covers it until step 4);
//   3. for a key the trim empties that has no watermark, one at 0 (it never moves up);
//   4. the objects below the trim point, deleted in ascending order, so what remains is
//      always a suffix of the list (readers also stop at a gap, in case deletes overtake).
// Claims stay: a writer whose cached state is any number of batches behind is fenced by the
// claim at the offset it believes is next (docs/fencing.md). Offsets are never reused: the
// key's next offset and next nonce are untouched.

import { InvalidArgument } from "../errors.ts";
import { decodeDataObject } from "../format/data-object.ts";
import { type DataObjectName, type KeyLayout, U128_MAX } from "../format/layout.ts";
import { type DataObject, parseListing, resolveChain } from "../format/object-chain.ts";
import type { RecordInput } from "../format/records.ts";
import { encodeTrimRecord } from "../format/trim-record.ts";
import { type ObjectStore, PreconditionFailed } from "../storage/object-store.ts";
import type { RecordCodecPool } from "../workers/codec-pool.ts";
import { writeDerivedObject } from "./fencing.ts";
import { encodeWatermark, type KeyState } from "./key-state.ts";

/** Objects deleted per DELETE request (S3's DeleteObjects limit). */
const DELETE_BATCH = 1000;

export interface TrimOutcome {
  /** The key's first available offset after the trim. */
  readonly firstOffset: bigint;
  /** Data objects deleted (including one replaced by its kept suffix). */
  readonly deletedObjects: number;
}

/**
 * The data objects that start below `before`, chain-resolved, plus leftovers hidden under
 * them, and the end markers of earlier trims below it.
 */
async function objectsBelow(
  store: ObjectStore,
  layout: KeyLayout,
  before: bigint,
): Promise<{ chain: DataObject[]; leftovers: DataObject[]; markers: DataObject[]; firstAbove: bigint | undefined }> {
  const below: DataObject[] = [];
  const markers: DataObject[] = [];
  let firstAbove: bigint | undefined;
  let startAfter = layout.startAfterForFirstOffset(0n);
  for (;;) {
    const page = await store.list(layout.dataPrefix, { startAfter });
    const pageMarkers: DataObject[] = [];
    const parsed = parseListing(layout, page.objects, pageMarkers);
    below.push(...parsed.filter((o) => o.name.firstOffset < before));
    markers.push(...pageMarkers.filter((o) => o.name.lastOffset < before));
    firstAbove = parsed.find((o) => o.name.firstOffset >= before)?.name.firstOffset;
    const last = page.objects.at(-1);
    if (!page.truncated || !last || firstAbove !== undefined) break;
    startAfter = last.key;
  }
  return { ...resolveChain(below), markers, firstAbove };
}

/** Where a trim that empties a key points the watermark, and its end marker starts. */
const END_MARKER_OFFSET = 1n;

/**
 * The end marker of a key emptied at `next` (docs/format.md, "Trim"): named from offset 1 to
 * the key's last offset, with its next nonce, and stored empty. The reference's writer reads
 * a key's end from the last name it lists from the watermark (at 1, the marker), and its
 * compaction merges only objects starting after the watermark, so the marker never becomes
 * the head of a merged object that would promise offsets it does not hold. Undefined for a
 * key whose only offset was 0: no such name exists for it.
 */
function endMarkerName(next: bigint, nextNonce: bigint, lastTimestamp: bigint): DataObjectName | undefined {
  if (next <= END_MARKER_OFFSET) return undefined;
  return {
    firstOffset: END_MARKER_OFFSET,
    lastOffset: next - 1n,
    minTimestamp: lastTimestamp,
    maxTimestamp: lastTimestamp,
    firstNonce: nextNonce,
    nextNonce,
    sizeBytes: 0n,
    // Its own offset: a backward read of the reference that reaches the marker then ends
    // there (from 0 it would compute offset -1).
    priorStartOffset: END_MARKER_OFFSET,
    compression: "none",
  };
}

/** Writes the end marker (an interrupted trim to the same point wrote the same one). */
async function writeEndMarker(store: ObjectStore, layout: KeyLayout, name: DataObjectName): Promise<string> {
  const key = layout.dataKey(name);
  await store.put(key, new Uint8Array(0), { ifNoneMatch: true }).catch((err: unknown) => {
    if (!(err instanceof PreconditionFailed)) throw err;
  });
  return key;
}

/** The items of `o` from `before` on, as the object that replaces it. */
async function keptSuffix(
  store: ObjectStore,
  layout: KeyLayout,
  o: DataObject,
  before: bigint,
  codec: RecordCodecPool,
): Promise<DataObject | undefined> {
  const stored = await store.get(o.key);
  if (!stored) return undefined; // compacted or trimmed meanwhile: the caller re-reads the key
  const kept: RecordInput[] = decodeDataObject(o.key, o.name, stored.body).filter((i) => i.offset >= before);
  const first = kept[0] as RecordInput;
  const body = await codec.encode(kept, o.name.compression);
  const firstNonce = kept.find((i) => i.nonce !== undefined)?.nonce ?? o.name.nextNonce;
  const name: DataObjectName = {
    ...o.name,
    firstOffset: before,
    minTimestamp: first.timestamp,
    firstNonce: firstNonce === U128_MAX ? o.name.nextNonce : firstNonce,
    sizeBytes: BigInt(body.byteLength),
  };
  // An earlier, interrupted trim to the same point wrote the same name and items.
  return writeDerivedObject(store, layout, name, body);
}

async function deleteAscending(store: ObjectStore, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += DELETE_BATCH) await store.delete(keys.slice(i, i + DELETE_BATCH));
}

/**
 * Trims the key's list so that `before` is its first available offset. `state` must be
 * current (the caller holds the key's queue). A point at or below the current first
 * offset changes nothing; one beyond the next offset is refused.
 */
export async function trimKey(
  store: ObjectStore,
  layout: KeyLayout,
  state: KeyState,
  before: bigint,
  codec: RecordCodecPool,
): Promise<TrimOutcome> {
  const next = state.tail.nextOffset;
  if (before > next) {
    throw new InvalidArgument("before_offset", `${before} is beyond the key's next offset ${next}`);
  }
  const { chain, leftovers, markers, firstAbove } = await objectsBelow(store, layout, before);
  // Nothing starts below the point: the list already starts at or after it.
  if (chain.length === 0) return { firstOffset: firstAbove ?? next, deletedObjects: 0 };
  if (state.tail.lastTimestamp !== undefined) {
    await store.put(
      layout.trimKey,
      encodeTrimRecord({
        firstOffset: before,
        nextNonce: state.tail.nextNonce,
        lastTimestamp: state.tail.lastTimestamp,
      }),
    );
  }
  const straddling = chain.find((o) => o.name.lastOffset >= before);
  if (straddling && !(await keptSuffix(store, layout, straddling, before, codec))) {
    throw new PreconditionFailed(straddling.key); // changed under us: the caller re-reads the key
  }
  // The watermark never moves up to the point. There, it could land inside an object that
  // another process's compaction writes meanwhile (merging objects from below the point;
  // this trimmer's `next` may also be stale), and a recovery listing from there would miss
  // that object and hand out its offsets again. Left below, it costs nothing: the objects
  // between it and the point are deleted. A key this trim empties needs a watermark,
  // though, or it would pass for a new one (docs/format.md, "Trim"): it points at the end
  // marker, at 1 (which hides only an object starting at 0: recovery of an emptied key
  // looks below, key-state.ts), or, for a key whose only offset was 0, is one at 0,
  // created only if none exists, which hides nothing.
  const emptied = before === next && state.tail.lastTimestamp !== undefined;
  const marker = emptied ? endMarkerName(next, state.tail.nextNonce, state.tail.lastTimestamp as bigint) : undefined;
  const markerKey = marker ? await writeEndMarker(store, layout, marker) : undefined;
  if (marker) await store.put(layout.watermarkKey, encodeWatermark(marker.firstOffset));
  else if (before === next && state.watermark === undefined) {
    await store.put(layout.watermarkKey, encodeWatermark(0n), { ifNoneMatch: true }).catch((err: unknown) => {
      if (!(err instanceof PreconditionFailed)) throw err; // the key has one: it serves as well
    });
  }
  // Earlier trims' markers go too: left below the list's start, a gap would follow them,
  // and the reference's reader ends a forward read at a gap.
  const ordered = [...chain, ...leftovers, ...markers.filter((m) => m.key !== markerKey)].sort((a, b) =>
    a.name.firstOffset < b.name.firstOffset ? -1 : a.name.firstOffset > b.name.firstOffset ? 1 : 0,
  );
  await deleteAscending(
    store,
    ordered.map((o) => o.key),
  );
  return { firstOffset: before, deletedObjects: ordered.length };
}
