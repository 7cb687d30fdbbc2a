// Taking slots over (docs/log.md, "Taking a slot over"): read each slot's newest record,
// fence the owner's log at its next sequence number, create the next record version naming
// this writer's lane. Everything the old owner wrote for the slot is below its fence, in a
// range the new record lists; a writer that loses the record race has written only a fence.
// Then the slot's entries in those ranges are read (slotEntries), before any append of it.

import { LogLayout } from "../format/log-layout.ts";
import type { LogId, SegmentEntry } from "../format/log-segment.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { listSegments, readKeptSegmentIndex, writeFence } from "./log-lane.ts";
import { createSlotRecord, type LogRange, rangesOf, readSlotRecord, type SlotRecord } from "./slot-records.ts";

const sameLog = (a: LogId, b: LogId) => a.writer === b.writer && a.lane === b.lane;

export interface TakeoverOptions {
  readonly store: ObjectStore;
  readonly prefix: string;
  /** The lane taking the slots. */
  readonly by: LogId;
  /** The lane's next sequence number: its entries of the slots will all be at or after it. */
  readonly nextSeq: () => bigint;
  readonly clock: () => bigint;
  /** Rounds of re-reading a slot whose record another writer created first. */
  readonly maxRounds?: number;
}

export interface TakeoverOutcome {
  /** Records of the slots this lane owns now (a slot it already owned keeps its record). */
  readonly taken: SlotRecord[];
  /** Slots other writers kept taking first, every round. */
  readonly contended: number[];
  /** Slots whose first record this call created: no writer had them before, none has entries of them. */
  readonly created: number[];
}

/** Takes `slots` for `options.by`; slots taken from one log share one fence. */
export async function takeSlots(options: TakeoverOptions, slots: readonly number[]): Promise<TakeoverOutcome> {
  const { store, prefix, by } = options;
  const taken: SlotRecord[] = [];
  const created: number[] = [];
  let pending = [...new Set(slots)];
  for (let round = 0; round < (options.maxRounds ?? 8) && pending.length > 0; round++) {
    const records = await Promise.all(
      pending.map(async (slot) => ({ slot, record: await readSlotRecord(store, prefix, slot) })),
    );
    // Fence each owner's log once for all its slots: the fenced writer's next write fails.
    const byOwner = new Map<string, { log: LogId; since: bigint; slots: { slot: number; record: SlotRecord }[] }>();
    const lost: number[] = [];
    for (const { slot, record } of records) {
      if (record && sameLog(record.owner, by)) {
        taken.push(record); // already this lane's (a restarted instance goes on as owner)
        continue;
      }
      if (!record) {
        const first: SlotRecord = { slot, version: 0n, owner: { ...by, since: options.nextSeq() }, previous: [] };
        if (await createSlotRecord(store, prefix, first)) {
          taken.push(first);
          created.push(slot);
        } else lost.push(slot);
        continue;
      }
      const id = `${record.owner.writer}\u0000${record.owner.lane}`;
      const group = byOwner.get(id) ?? { log: record.owner, since: record.owner.since, slots: [] };
      if (record.owner.since < group.since) group.since = record.owner.since;
      group.slots.push({ slot, record });
      byOwner.set(id, group);
    }
    for (const group of byOwner.values()) {
      const owner: LogId = { writer: group.log.writer, lane: group.log.lane };
      const fence = await writeFence(store, prefix, owner, group.since, {
        kind: "takeover-fence",
        createdMillis: options.clock(),
        fenced: group.slots.map(({ slot, record }) => ({ slot, by, recordVersion: record.version + 1n })),
      });
      for (const { slot, record } of group.slots) {
        const next: SlotRecord = {
          slot,
          version: record.version + 1n,
          owner: { ...by, since: options.nextSeq() },
          previous: [...record.previous, { log: owner, from: record.owner.since, to: fence }],
        };
        if (await createSlotRecord(store, prefix, next)) taken.push(next);
        else lost.push(slot);
      }
    }
    pending = lost;
  }
  return { taken, contended: pending, created };
}

/** One entry of a slot in a log, and where its records are. */
export interface SlotEntry {
  readonly log: LogId;
  readonly seq: bigint;
  /** When its segment was written (the writer's clock): how long it has waited to be materialized. */
  readonly createdMillis: bigint;
  readonly bodyStart: number;
  readonly entry: SegmentEntry;
}

/**
 * Every entry of `slot` in `ranges` (a record's previous ranges and the owner's), in log
 * order per range. Reads each segment's index once; cost: a LIST per 1000 segments and a GET
 * per segment of the ranges.
 */
export async function slotEntries(
  store: ObjectStore,
  prefix: string,
  slot: number,
  ranges: readonly LogRange[],
): Promise<SlotEntry[]> {
  const found: SlotEntry[] = [];
  for (const range of ranges) {
    const layout = new LogLayout(prefix, range.log);
    let from = range.from;
    for (;;) {
      const page = await listSegments(store, layout, from);
      const seqs = page.seqs.filter((s) => range.to === undefined || s < range.to);
      for (const seq of seqs) {
        // Its writer deleted it since the LIST: it deletes only segments whose entries of
        // every slot are materialized (or of slots no record lists it for), so none is lost.
        const index = await readKeptSegmentIndex(store, layout, seq);
        if (!index) continue;
        for (const entry of index.entries) {
          if (entry.slot === slot) {
            found.push({ log: range.log, seq, createdMillis: index.createdMillis, bodyStart: index.bodyStart, entry });
          }
        }
      }
      const last = page.seqs.at(-1);
      if (!page.truncated || last === undefined || (range.to !== undefined && last + 1n >= range.to)) break;
      from = last + 1n;
    }
  }
  return found;
}

export { rangesOf };
