// What a lane knows of the slots it owns (docs/log.md, "Key state"): per key, its entries in
// the logs (its own and the ranges taken over) in offset order, and where its per-key objects
// end once known. A key's state continues its per-key objects with these entries; the
// materializer turns entries into per-key objects and then forgets them.

import { CorruptObject } from "../errors.ts";
import type { KeyTail } from "../writer/append-plan.ts";
import type { MaterializedTail } from "./materialize.ts";
import type { SlotEntry } from "./takeover.ts";

export interface KeyEntries {
  readonly keyspace: string;
  readonly key: string;
  /** Entries not known to be materialized, ascending by offset. */
  entries: SlotEntry[];
  /** Where the key's per-key objects end, once read (recovery) or written (materialization). */
  materialized?: MaterializedTail | undefined;
  /** A trim rewrote its per-key objects since: where they end must be read again. */
  trimmed?: boolean;
}

export class SlotIndex {
  private readonly slots = new Map<number, Map<string, KeyEntries>>();
  /**
   * Slots whose first record this lane created (docs/log.md, "Keys of new slots"): every key
   * of them with per-key objects in a keyspace created on the log is here, as this lane
   * wrote them all.
   */
  private readonly whole = new Set<number>();

  has(slot: number): boolean {
    return this.slots.has(slot);
  }

  /** Starts a slot from the entries found in its ranges (takeover.ts `slotEntries`). */
  set(slot: number, folderOf: (keyspace: string, key: string) => string, entries: readonly SlotEntry[]): void {
    const keys = new Map<string, KeyEntries>();
    for (const e of entries) {
      const folder = folderOf(e.entry.keyspace, e.entry.key);
      let k = keys.get(folder);
      if (!k) keys.set(folder, (k = { keyspace: e.entry.keyspace, key: e.entry.key, entries: [] }));
      k.entries.push(e);
    }
    for (const k of keys.values())
      k.entries.sort((a, b) => (a.entry.name.firstOffset < b.entry.name.firstOffset ? -1 : 1));
    this.slots.set(slot, keys);
  }

  drop(slot: number): void {
    this.slots.delete(slot);
    this.whole.delete(slot);
  }

  /** The slot is new: no writer had it before this lane created its first record. */
  markNew(slot: number): void {
    if (this.slots.has(slot)) this.whole.add(slot);
  }

  /**
   * Where the key's per-key objects end, if known without a LIST: as recorded here, or
   * nothing at all for a key of a new slot (keyspace created on the log) this lane never
   * materialized nor trimmed. Undefined: read them.
   */
  knownMaterialized(slot: number, folder: string, createdOnLog: boolean): MaterializedTail | undefined {
    const k = this.slots.get(slot)?.get(folder);
    if (k?.materialized) return k.materialized;
    if (k?.trimmed || !createdOnLog || !this.whole.has(slot)) return undefined;
    return NO_OBJECTS;
  }

  /** Adds an entry this lane just stored (after every entry of the key it knows). */
  add(slot: number, folder: string, entry: SlotEntry): void {
    const keys = this.slots.get(slot);
    if (!keys) throw new Error(`slot ${slot} is not owned`);
    let k = keys.get(folder);
    if (!k) keys.set(folder, (k = { keyspace: entry.entry.keyspace, key: entry.entry.key, entries: [] }));
    k.entries.push(entry);
  }

  entriesOf(slot: number, folder: string): readonly SlotEntry[] {
    return this.slots.get(slot)?.get(folder)?.entries ?? [];
  }

  /** Records where the key's per-key objects end (recovery read them). */
  knowMaterialized(slot: number, folder: string, keyspace: string, key: string, tail: MaterializedTail): void {
    const keys = this.slots.get(slot);
    if (!keys) return;
    const k = keys.get(folder);
    if (k) {
      k.materialized = tail;
      k.trimmed = false;
    } else keys.set(folder, { keyspace, key, entries: [], materialized: tail });
  }

  /** Keys of the slot with entries, and the slot's oldest entry's time (undefined: none). */
  keysOf(slot: number): { keys: [string, KeyEntries][]; oldestMillis: bigint | undefined } {
    const keys = [...(this.slots.get(slot) ?? new Map<string, KeyEntries>())].filter(([, k]) => k.entries.length > 0);
    let oldestMillis: bigint | undefined;
    for (const [, k] of keys) {
      const t = k.entries[0]?.createdMillis;
      if (t !== undefined && (oldestMillis === undefined || t < oldestMillis)) oldestMillis = t;
    }
    return { keys, oldestMillis };
  }

  /** Forgets where the key's per-key objects end (a trim rewrote them): a LIST tells again. */
  forgetMaterialized(slot: number, folder: string, keyspace: string, key: string): void {
    const keys = this.slots.get(slot);
    if (!keys) return;
    const k = keys.get(folder);
    if (k) {
      k.materialized = undefined;
      k.trimmed = true;
    } else keys.set(folder, { keyspace, key, entries: [], trimmed: true });
  }

  /** Forgets the key's entries its per-key objects now hold. */
  materialized(slot: number, folder: string, tail: MaterializedTail): void {
    const k = this.slots.get(slot)?.get(folder);
    if (!k) return;
    k.materialized = tail;
    k.entries = k.entries.filter((e) => e.entry.name.lastOffset >= tail.nextOffset);
  }

  /** Owned slots. */
  get owned(): number[] {
    return [...this.slots.keys()];
  }
}

/** The tail of a key without per-key objects. */
export const NO_OBJECTS: MaterializedTail = {
  nextOffset: 0n,
  nextNonce: 0n,
  lastTimestamp: undefined,
  newestStartOffset: 0n,
};

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
