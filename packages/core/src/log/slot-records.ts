// Slot records (docs/log.md, "Slot records"): who owns a slot and which log ranges may hold
// its unmaterialized entries. Each ownership change is a new version, created with
// If-None-Match, so of two writers taking a slot from one version exactly one succeeds.
// Versions are named inverted: a LIST of one name finds the newest.

import { SLOT_COUNT } from "@klstore/sharding";
import { CorruptObject } from "../errors.ts";
import { SlotLayout } from "../format/log-layout.ts";
import type { LogId } from "../format/log-segment.ts";
import { type ObjectStore, PreconditionFailed } from "../storage/object-store.ts";

/** Entries of a slot may lie in `log` from `from` up to, not including, `to`. */
export interface LogRange {
  readonly log: LogId;
  readonly from: bigint;
  /** Exclusive; undefined for the owner's own log, which goes on. */
  readonly to?: bigint | undefined;
}

export interface SlotRecord {
  readonly slot: number;
  readonly version: bigint;
  /** The owner's lane, and its next sequence number when it took the slot. */
  readonly owner: LogId & { readonly since: bigint };
  /** Ranges of earlier owners' logs that may still hold unmaterialized entries. */
  readonly previous: readonly LogRange[];
}

/** Every range a slot's unmaterialized entries may be in: the previous ones and the owner's. */
export function rangesOf(record: SlotRecord): LogRange[] {
  return [
    ...record.previous,
    { log: { writer: record.owner.writer, lane: record.owner.lane }, from: record.owner.since },
  ];
}

export function encodeSlotRecord(record: SlotRecord): Uint8Array {
  const log = (l: LogId) => ({ writer: l.writer, lane: l.lane });
  return Buffer.from(
    JSON.stringify({
      slot: record.slot,
      version: record.version.toString(),
      owner: { ...log(record.owner), since: record.owner.since.toString() },
      previous: record.previous.map((r) => ({
        ...log(r.log),
        from: r.from.toString(),
        ...(r.to === undefined ? {} : { to: r.to.toString() }),
      })),
    }),
  );
}

const DIGITS = /^\d{1,20}$/;

export function decodeSlotRecord(objectKey: string, bytes: Uint8Array): SlotRecord {
  const bad = () => new CorruptObject(objectKey, "not a slot record");
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    throw bad();
  }
  const r = raw as {
    slot?: unknown;
    version?: unknown;
    owner?: { writer?: unknown; lane?: unknown; since?: unknown };
    previous?: unknown;
  };
  const number = (v: unknown) => {
    if (typeof v !== "string" || !DIGITS.test(v)) throw bad();
    return BigInt(v);
  };
  const log = (l: { writer?: unknown; lane?: unknown } | undefined): LogId => {
    if (!l || typeof l.writer !== "string" || !Number.isInteger(l.lane)) throw bad();
    return { writer: l.writer, lane: l.lane as number };
  };
  if (!Number.isInteger(r.slot) || (r.slot as number) < 0 || (r.slot as number) >= SLOT_COUNT) throw bad();
  if (!Array.isArray(r.previous)) throw bad();
  return {
    slot: r.slot as number,
    version: number(r.version),
    owner: { ...log(r.owner), since: number(r.owner?.since) },
    previous: r.previous.map((p: { writer?: unknown; lane?: unknown; from?: unknown; to?: unknown }) => ({
      log: log(p),
      from: number(p.from),
      ...(p.to === undefined ? {} : { to: number(p.to) }),
    })),
  };
}

/** The slot's newest record, or undefined if it never had one. */
export async function readSlotRecord(
  store: ObjectStore,
  prefix: string,
  slot: number,
): Promise<SlotRecord | undefined> {
  const layout = new SlotLayout(prefix, slot);
  for (;;) {
    const listed = await store.list(layout.folder, { maxKeys: 1 });
    const newest = listed.objects[0];
    if (!newest) return undefined;
    const version = layout.parseVersionKey(newest.key);
    if (version === undefined) throw new CorruptObject(newest.key, "not a slot record version");
    const obj = await store.get(newest.key);
    // Older versions are deleted once a newer one exists: this one was, so list again.
    if (!obj) continue;
    const record = decodeSlotRecord(newest.key, obj.body);
    if (record.slot !== slot || record.version !== version) {
      throw new CorruptObject(newest.key, `holds slot ${record.slot} version ${record.version}`);
    }
    return record;
  }
}

/** Creates a record version; false when that version exists (another writer took the slot first). */
export async function createSlotRecord(store: ObjectStore, prefix: string, record: SlotRecord): Promise<boolean> {
  const layout = new SlotLayout(prefix, record.slot);
  try {
    await store.put(layout.versionKey(record.version), encodeSlotRecord(record), { ifNoneMatch: true });
    return true;
  } catch (err) {
    if (err instanceof PreconditionFailed) return false;
    throw err;
  }
}

export { slotOf } from "@klstore/sharding";
