// What a reader knows of the logs (docs/log.md, "Reading"): per log, the indexes of the
// segments it has read, by slot; per slot, its record (cached briefly). A key's entries are
// found from its slot's record ranges. The owner's log is listed from the last segment read
// at every lookup, so an acknowledged append is always found (read-after-write); a fence
// there naming the slot means the slot moved on, and its newer record is read.

import { LogLayout } from "../format/log-layout.ts";
import type { LogId } from "../format/log-segment.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { KeyQueue } from "../writer/key-queue.ts";
import { listSegments, readSegmentIndex } from "./log-lane.ts";
import { type LogRange, rangesOf, readSlotRecord, type SlotRecord, slotOf } from "./slot-records.ts";
import type { SlotEntry } from "./takeover.ts";

export interface LogTailConfig {
  /** How long a slot record read is trusted before it is read again. */
  readonly slotRecordCacheMillis: number;
}

export const LOG_TAIL_DEFAULTS: LogTailConfig = { slotRecordCacheMillis: 1000 };

/** What is known of one log: every segment in [low, next) is indexed. */
interface LogState {
  low: bigint;
  next: bigint;
  readonly bySlot: Map<number, SlotEntry[]>;
  /** Per slot, the newest record version a fence in this log named. */
  readonly fenced: Map<number, bigint>;
}

/** Record reads of a slot whose owner keeps moving, before a lookup gives up re-reading. */
const MAX_RECORD_ROUNDS = 4;

export class LogTail {
  private readonly store: ObjectStore;
  private readonly prefix: string;
  private readonly config: LogTailConfig;
  private readonly now: () => number;
  private readonly records = new Map<number, { record: SlotRecord | undefined; readAt: number }>();
  private readonly logs = new Map<string, LogState>();
  /**
   * Per slot and source log, the newest segment whose entries of the slot are materialized
   * (progress recorded in its owners' segments, docs/log.md): those entries are per-key
   * objects now (or trimmed since), and are never shown.
   */
  private readonly progress = new Map<string, bigint>();
  /** One catch-up per log at a time: concurrent lookups share its LISTs and index reads. */
  private readonly catchUps = new KeyQueue();

  constructor(store: ObjectStore, prefix: string, config: Partial<LogTailConfig> = {}, now = Date.now) {
    this.store = store;
    this.prefix = prefix;
    this.config = { ...LOG_TAIL_DEFAULTS, ...config };
    this.now = now;
  }

  /** A key's entries in the logs, ascending by first offset (possibly below its materialized end). */
  async entriesOf(keyspace: string, key: string): Promise<SlotEntry[]> {
    const slot = slotOf(keyspace, key);
    let record = await this.recordOf(slot, false);
    for (let round = 0; record && round < MAX_RECORD_ROUNDS; round++) {
      const version = record.version;
      let moved = false;
      for (const range of rangesOf(record)) {
        const state = await this.catchUp(range);
        if ((state.fenced.get(slot) ?? -1n) > version) moved = true;
      }
      if (!moved) break;
      record = await this.recordOf(slot, true);
    }
    if (!record) return [];
    const found: SlotEntry[] = [];
    for (const range of rangesOf(record)) {
      const state = this.logs.get(logKey(range.log));
      for (const e of state?.bySlot.get(slot) ?? []) {
        const inRange = e.seq >= range.from && (range.to === undefined || e.seq < range.to);
        const materialized = (this.progress.get(progressKey(slot, e.log)) ?? -1n) >= e.seq;
        if (inRange && !materialized && e.entry.keyspace === keyspace && e.entry.key === key) found.push(e);
      }
    }
    return found.sort((a, b) => (a.entry.name.firstOffset < b.entry.name.firstOffset ? -1 : 1));
  }

  /** A segment found deleted (its entries materialized): its entries are never shown again. */
  forgetSegment(log: LogId, seq: bigint): void {
    const state = this.logs.get(logKey(log));
    if (!state) return;
    for (const [slot, entries] of state.bySlot) {
      const kept = entries.filter((e) => e.seq !== seq);
      if (kept.length !== entries.length) state.bySlot.set(slot, kept);
    }
  }

  private async recordOf(slot: number, refresh: boolean): Promise<SlotRecord | undefined> {
    const cached = this.records.get(slot);
    if (!refresh && cached && this.now() - cached.readAt < this.config.slotRecordCacheMillis) return cached.record;
    const record = await readSlotRecord(this.store, this.prefix, slot);
    this.records.set(slot, { record, readAt: this.now() });
    return record;
  }

  /** Indexes the range's segments not read yet: the owner's open range is listed every time. */
  private catchUp(range: LogRange): Promise<LogState> {
    const id = logKey(range.log);
    return this.catchUps.run(id, async () => {
      let state = this.logs.get(id);
      if (!state) {
        state = { low: range.from, next: range.from, bySlot: new Map(), fenced: new Map() };
        this.logs.set(id, state);
      }
      const layout = new LogLayout(this.prefix, range.log);
      if (range.from < state.low) {
        await this.index(layout, state, range.from, state.low);
        state.low = range.from;
      }
      if (range.to === undefined || state.next < range.to) {
        state.next = await this.index(layout, state, state.next, range.to);
      }
      return state;
    });
  }

  /** Reads the indexes of the segments in [from, to); returns the sequence number after the last. */
  private async index(layout: LogLayout, state: LogState, from: bigint, to: bigint | undefined): Promise<bigint> {
    let next = from;
    for (;;) {
      const page = await listSegments(this.store, layout, next);
      const seqs = page.seqs.filter((s) => to === undefined || s < to);
      for (const seq of seqs) {
        const index = await readSegmentIndex(this.store, layout, seq);
        for (const entry of index.entries) {
          let list = state.bySlot.get(entry.slot);
          if (!list) state.bySlot.set(entry.slot, (list = []));
          list.push({ log: layout.log, seq, createdMillis: index.createdMillis, bodyStart: index.bodyStart, entry });
        }
        for (const p of index.progress) {
          const id = progressKey(p.slot, p.source);
          if ((this.progress.get(id) ?? -1n) < p.through) this.progress.set(id, p.through);
        }
        for (const f of index.fenced) {
          if ((state.fenced.get(f.slot) ?? -1n) < f.recordVersion) state.fenced.set(f.slot, f.recordVersion);
        }
        next = seq + 1n;
      }
      const last = page.seqs.at(-1);
      if (!page.truncated || last === undefined || (to !== undefined && last + 1n >= to)) return next;
      next = last + 1n;
    }
  }
}

function logKey(log: LogId): string {
  return `${log.writer}\u0000${log.lane}`;
}

function progressKey(slot: number, log: LogId): string {
  return `${slot}\u0000${logKey(log)}`;
}
