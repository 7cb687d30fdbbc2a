// What a lane knows of the slots it owns: each key's entries in the logs (its own and the
// ranges taken over), in offset order (docs/log.md, "Key state"). A key's state continues
// its per-key objects with these entries; a reader of the lane's slots finds them here too.

import { CorruptObject } from "../errors.ts";
import type { KeyTail } from "../writer/append-plan.ts";
import type { SlotEntry } from "./takeover.ts";

/** A key's entries, keyed by its folder (layout.ts). */
export type KeyEntries = Map<string, SlotEntry[]>;

export class SlotIndex {
  private readonly slots = new Map<number, KeyEntries>();

  has(slot: number): boolean {
    return this.slots.has(slot);
  }

  /** Starts a slot from the entries found in its ranges (takeover.ts `slotEntries`). */
  set(slot: number, folderOf: (keyspace: string, key: string) => string, entries: readonly SlotEntry[]): void {
    const keys: KeyEntries = new Map();
    for (const e of entries) {
      const folder = folderOf(e.entry.keyspace, e.entry.key);
      let list = keys.get(folder);
      if (!list) keys.set(folder, (list = []));
      list.push(e);
    }
    for (const list of keys.values())
      list.sort((a, b) => (a.entry.name.firstOffset < b.entry.name.firstOffset ? -1 : 1));
    this.slots.set(slot, keys);
  }

  drop(slot: number): void {
    this.slots.delete(slot);
  }

  /** Adds an entry this lane just stored (after every entry of the key it knows). */
  add(slot: number, folder: string, entry: SlotEntry): void {
    const keys = this.slots.get(slot);
    if (!keys) throw new Error(`slot ${slot} is not owned`);
    let list = keys.get(folder);
    if (!list) keys.set(folder, (list = []));
    list.push(entry);
  }

  entriesOf(slot: number, folder: string): readonly SlotEntry[] {
    return this.slots.get(slot)?.get(folder) ?? [];
  }
}

/**
 * A key's state: its per-key objects' tail continued by its entries beyond it. Entries at
 * or below the materialized end are materialized already; the rest must follow on exactly.
 */
export function continueTail(tail: KeyTail, entries: readonly SlotEntry[], keyFolder: string): KeyTail {
  let t = tail;
  for (const { entry, log, seq } of entries) {
    const { name } = entry;
    if (name.lastOffset < t.nextOffset) continue;
    if (name.firstOffset !== t.nextOffset) {
      throw new CorruptObject(
        `${log.writer}/${log.lane}/s${seq}`,
        `entry of ${keyFolder} starts at ${name.firstOffset}, the key continues at ${t.nextOffset}`,
      );
    }
    t = {
      nextOffset: name.lastOffset + 1n,
      nextNonce: name.nextNonce,
      lastTimestamp: name.maxTimestamp,
      newestStartOffset: name.firstOffset,
    };
  }
  return t;
}
