// How a listing of a key's data objects is read: which objects hold the list and which
// are left over. Two things can make objects overlap: a compaction interrupted between
// writing its merged object and deleting its inputs, and a sealed (aborted) batch, which
// is an empty object under a data name (docs/fencing.md). Readers and writers both resolve
// a listing with these rules, so they agree on the list without coordination.

import { CorruptObject } from "../errors.ts";
import type { ListedObject } from "../storage/object-store.ts";
import { type DataObjectName, isEndMarker, type KeyLayout } from "./layout.ts";

export interface DataObject {
  /** Full object key. */
  readonly key: string;
  readonly name: DataObjectName;
}

export interface ResolvedChain {
  /** Objects holding the list, ascending, each starting after the previous one ends. */
  readonly chain: DataObject[];
  /** Objects whose offsets a chain object also holds: safe to delete (by the writer). */
  readonly leftovers: DataObject[];
}

/**
 * Parses listed objects of a key; an unparseable name under data_ is reported, not skipped.
 * Sealed batches and end markers hold no items and are left out (`markers` collects the
 * latter, for a trim to delete).
 */
export function parseListing(layout: KeyLayout, listed: readonly ListedObject[], markers?: DataObject[]): DataObject[] {
  const objects: DataObject[] = [];
  for (const o of listed) {
    const name = layout.parseDataKey(o.key);
    if (!name) throw new CorruptObject(o.key, "name under the key's data_ prefix does not parse");
    if (isEndMarker(name)) {
      if (o.size !== 0) throw new CorruptObject(o.key, `holds ${o.size} bytes, its name says 0`);
      markers?.push({ key: o.key, name });
      continue;
    }
    // A sealed batch: the name was reserved by a claim that never completed (docs/fencing.md).
    if (o.size === 0) continue;
    objects.push({ key: o.key, name });
  }
  return objects;
}

/**
 * Chooses the chain among parsed objects: ascending by first offset, the widest object wins
 * a tie, and an object wholly inside one already chosen is a leftover. An object that
 * starts inside the previous one but ends after it (never written by klstore) stays in the
 * chain; readers skip its already-served offsets.
 */
export function resolveChain(objects: readonly DataObject[]): ResolvedChain {
  const sorted = [...objects].sort((a, b) => {
    if (a.name.firstOffset !== b.name.firstOffset) return a.name.firstOffset < b.name.firstOffset ? -1 : 1;
    return a.name.lastOffset > b.name.lastOffset ? -1 : a.name.lastOffset < b.name.lastOffset ? 1 : 0;
  });
  const chain: DataObject[] = [];
  const leftovers: DataObject[] = [];
  let coveredTo = -1n;
  for (const o of sorted) {
    if (o.name.lastOffset <= coveredTo) leftovers.push(o);
    else {
      chain.push(o);
      coveredTo = o.name.lastOffset;
    }
  }
  return { chain, leftovers };
}
