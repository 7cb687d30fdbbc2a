// Materialization of one key (docs/log.md, "Materialization"): its entries beyond its per-key
// objects, concatenated in offset order, become one data object in the key's folder, in the
// seed layout. An entry's records are already a data object's body, so this copies byte runs;
// the name follows from the entries, so a rerun writes the same name and bytes (created with
// If-None-Match: an existing object under it counts as done, as a merge's does).

import { CorruptObject } from "../errors.ts";
import type { DataObjectName, KeyLayout } from "../format/layout.ts";
import type { KeyTail } from "../writer/append-plan.ts";
import { writeDerivedObject } from "../writer/fencing.ts";
import type { SlotEntry } from "./takeover.ts";

/** Where a key's per-key objects end: the state they alone give (next offset, nonce, ...). */
export type MaterializedTail = KeyTail;

/**
 * Writes the key's entries beyond `tail` as one object; returns the tail after it, or
 * `tail` itself when nothing was beyond it. Entries must follow on from `tail` exactly.
 */
export async function materializeKey(
  layout: KeyLayout,
  tail: MaterializedTail,
  entries: readonly SlotEntry[],
  bodyOf: (e: SlotEntry) => Promise<Uint8Array>,
  write: (name: DataObjectName, body: Uint8Array) => Promise<unknown>,
): Promise<MaterializedTail> {
  const pending = entries.filter((e) => e.entry.name.lastOffset >= tail.nextOffset);
  const first = pending[0];
  const last = pending.at(-1);
  if (!first || !last) return tail;
  let expected = tail.nextOffset;
  for (const e of pending) {
    if (e.entry.name.firstOffset !== expected) {
      throw new CorruptObject(
        `${e.log.writer}/${e.log.lane}/s${e.seq}`,
        `entry of ${layout.folder} starts at ${e.entry.name.firstOffset}, the key continues at ${expected}`,
      );
    }
    expected = e.entry.name.lastOffset + 1n;
  }
  const bodies = await Promise.all(pending.map(bodyOf));
  const body = Buffer.concat(bodies);
  const name: DataObjectName = {
    firstOffset: first.entry.name.firstOffset,
    lastOffset: last.entry.name.lastOffset,
    minTimestamp: first.entry.name.minTimestamp,
    maxTimestamp: last.entry.name.maxTimestamp,
    firstNonce: first.entry.name.firstNonce,
    nextNonce: last.entry.name.nextNonce,
    sizeBytes: BigInt(body.byteLength),
    // The key's newest per-key object, not its entries' `prior` (they name each other).
    priorStartOffset: tail.newestStartOffset,
    compression: "none",
  };
  await write(name, body);
  return {
    nextOffset: last.entry.name.lastOffset + 1n,
    nextNonce: last.entry.name.nextNonce,
    lastTimestamp: last.entry.name.maxTimestamp,
    newestStartOffset: first.entry.name.firstOffset,
  };
}

/** The write of a materialized object: created, or already there from a rerun (docs/fencing.md). */
export function derivedWrite(
  store: Parameters<typeof writeDerivedObject>[0],
  layout: KeyLayout,
): (name: DataObjectName, body: Uint8Array) => Promise<unknown> {
  return (name, body) => writeDerivedObject(store, layout, name, body);
}
