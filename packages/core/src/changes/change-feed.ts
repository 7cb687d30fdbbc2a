// Reading a keyspace's change log (docs/watch.md). A watcher's position is a cursor:
// `from`, a time before which every change object was delivered, and `seen`, the highest
// sequence number delivered per writer among objects named at or after `from`. Each poll
// lists the objects named from `from` on, delivers those not yet seen, in name order, then
// moves `from` up to now - LOOKBACK_MILLIS: an object can still appear that far back (its
// writer's PUT may still be running), and `seen` makes sure it is delivered exactly once.
// A poll costs one LIST (per 1000 objects of the last LOOKBACK_MILLIS) plus one GET per
// new object: nothing grows with the keys that did not change.

import { LRUCache } from "lru-cache";
import { CursorExpired, InvalidArgument } from "../errors.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { listAll } from "../writer/key-state.ts";
import {
  CHANGE_LOG_RETENTION_MILLIS,
  type ChangeObjectRef,
  changesFolder,
  decodeChanges,
  type KeyChange,
  LOOKBACK_MILLIS,
  parseChangeObjectKey,
  startAfterForMillis,
} from "./change-log.ts";
import { decodeWatchCursor, MAX_CURSOR_WRITERS, type WatchCursor } from "./watch-cursor.ts";

export { decodeWatchCursor, encodeWatchCursor, MAX_CURSOR_WRITERS, type WatchCursor } from "./watch-cursor.ts";

/** A cursor for "from now on". */
export function cursorAt(now: bigint): WatchCursor {
  return { from: now, seen: new Map() };
}

/** Unseen change objects a catch-up step lists at most (pages of this many; S3 allows 1000). */
export const CATCH_UP_LIST_OBJECTS = 1000;
/**
 * Changes one step delivers at most (whole objects, so it may pass it by one object's):
 * a cursor resumed from hours ago on a busy keyspace is caught up in steps, each a message
 * well within gRPC's 64 MiB, instead of in one message that can never be sent.
 */
export const MAX_CHANGES_PER_STEP = 10_000;

export interface AdvanceOptions {
  /** The listing stops before the end of the log: the cursor must not pass its last object. */
  readonly truncated?: boolean;
  /** Deliver only this many objects; the cursor stops before the first one left out. */
  readonly deliverAtMost?: number;
}

/**
 * Given the objects listed from `cursor.from` on (in name order), which to deliver and the
 * cursor after delivering them. Pure: the reader hub shares one listing among watchers.
 */
export function advanceCursor(
  cursor: WatchCursor,
  listed: readonly ChangeObjectRef[],
  now: bigint,
  options: AdvanceOptions = {},
): { deliver: ChangeObjectRef[]; next: WatchCursor } {
  const seen = new Map(cursor.seen);
  const deliver: ChangeObjectRef[] = [];
  // Where delivery stopped short of the log's end: every object named before it was delivered.
  let stop = options.truncated ? listed.at(-1)?.millis : undefined;
  for (const ref of listed) {
    if (ref.millis < cursor.from) continue;
    if ((seen.get(ref.writer) ?? -1) >= ref.seq) continue;
    if (deliver.length === (options.deliverAtMost ?? Number.POSITIVE_INFINITY)) {
      stop = ref.millis;
      break;
    }
    deliver.push(ref);
    seen.set(ref.writer, ref.seq);
  }
  const lookback = now - BigInt(LOOKBACK_MILLIS);
  let from = lookback > cursor.from ? lookback : cursor.from;
  // Objects named from `stop` on may be left: the next step lists from there, and `seen`
  // (kept for every writer with objects from there on) skips those already delivered.
  if (stop !== undefined && stop < from) from = stop < cursor.from ? cursor.from : stop;
  // Only writers with objects from `from` on can still show an object that must be skipped.
  const newest = new Map<string, bigint>();
  for (const r of listed) if (r.millis >= from) newest.set(r.writer, r.millis);
  for (const writer of [...seen.keys()]) if (!newest.has(writer)) seen.delete(writer);
  if (seen.size > MAX_CURSOR_WRITERS) {
    // More writer instances in the window than a cursor holds (never seen in practice):
    // forgetting a writer only delivers its objects in the window again.
    const oldestFirst = [...seen.keys()].sort((a, b) => Number((newest.get(a) as bigint) - (newest.get(b) as bigint)));
    for (const writer of oldestFirst.slice(0, seen.size - MAX_CURSOR_WRITERS)) seen.delete(writer);
  }
  return { deliver, next: { from, seen } };
}

/** The change objects of a keyspace named at or after `from`, in name order. */
export async function listChangeObjects(
  store: ObjectStore,
  prefix: string,
  keyspace: string,
  from: bigint,
): Promise<ChangeObjectRef[]> {
  const folder = changesFolder(prefix, keyspace);
  const listed = await listAll(store, folder, startAfterForMillis(folder, from));
  return listed.flatMap((o) => parseChangeObjectKey(folder, o.key) ?? []);
}

/**
 * The change objects from `cursor.from` on, listed page by page until the pages hold
 * CATCH_UP_LIST_OBJECTS objects the cursor has not seen, or the log ends (`truncated` says
 * which). Pages of objects already delivered (the lookback window of a busy keyspace) are
 * listed through, so they never hold the cursor back.
 */
async function listUnseen(
  store: ObjectStore,
  prefix: string,
  keyspace: string,
  cursor: WatchCursor,
): Promise<{ refs: ChangeObjectRef[]; truncated: boolean }> {
  const folder = changesFolder(prefix, keyspace);
  const refs: ChangeObjectRef[] = [];
  let unseen = 0;
  let startAfter = startAfterForMillis(folder, cursor.from);
  for (;;) {
    const page = await store.list(folder, { startAfter, maxKeys: CATCH_UP_LIST_OBJECTS });
    for (const o of page.objects) {
      const ref = parseChangeObjectKey(folder, o.key);
      if (!ref) continue;
      refs.push(ref);
      if (ref.millis >= cursor.from && (cursor.seen.get(ref.writer) ?? -1) < ref.seq) unseen++;
    }
    const last = page.objects.at(-1);
    if (!page.truncated || !last) return { refs, truncated: false };
    if (unseen >= CATCH_UP_LIST_OBJECTS) return { refs, truncated: true };
    startAfter = last.key;
  }
}

/**
 * Reads the bodies of `deliver` in order until MAX_CHANGES_PER_STEP changes are read;
 * returns them and how many objects they came from.
 */
export async function readWithinStep(
  deliver: readonly ChangeObjectRef[],
  read: (ref: ChangeObjectRef) => Promise<KeyChange[]>,
): Promise<{ changes: KeyChange[]; objects: number }> {
  const changes: KeyChange[] = [];
  let objects = 0;
  for (const ref of deliver) {
    if (changes.length >= MAX_CHANGES_PER_STEP) break;
    changes.push(...(await read(ref)));
    objects++;
  }
  return { changes, objects };
}

export async function readChangeObject(store: ObjectStore, ref: ChangeObjectRef): Promise<KeyChange[]> {
  const obj = await store.get(ref.key);
  // Deleted by the retention sweep since it was listed: its changes are past retention.
  return obj ? decodeChanges(ref.key, obj.body) : [];
}

/** A cursor's time may run ahead of this reader's clock by this much (clock skew). */
const CURSOR_SKEW_MILLIS = 60_000n;

/**
 * Where a watch starts: from now without a cursor (an empty one), else from the cursor,
 * refused if it is not one this service issued for the keyspace (INVALID_ARGUMENT) or
 * older than the change log keeps (OUT_OF_RANGE).
 */
export function startingCursor(folder: string, token: string | undefined, now: bigint): WatchCursor {
  if (token === undefined || token === "") return cursorAt(now);
  const cursor = decodeWatchCursor(folder, token);
  checkCursorAge(cursor, now);
  return cursor;
}

/** Refuses a cursor older than the change log keeps, or from the future (never issued). */
export function checkCursorAge(cursor: WatchCursor, now: bigint): void {
  if (cursor.from > now + CURSOR_SKEW_MILLIS) {
    // A stream from it would stay silent until that time, skipping every change before.
    throw new InvalidArgument(
      "cursor",
      `is from ${new Date(Number(cursor.from)).toISOString()}, in the future: not a cursor this service issued`,
    );
  }
  const oldest = now - BigInt(CHANGE_LOG_RETENTION_MILLIS);
  if (cursor.from < oldest) {
    throw new CursorExpired(
      `the cursor is from ${new Date(Number(cursor.from)).toISOString()}, older than the change log keeps (${CHANGE_LOG_RETENTION_MILLIS / 3_600_000} h); watch from now and read the keys' lists to catch up`,
    );
  }
}

/** One poll for one watcher, reading storage itself (direct mode, or a cursor behind the hub). */
export async function pollChanges(
  store: ObjectStore,
  prefix: string,
  keyspace: string,
  cursor: WatchCursor,
  now: bigint,
): Promise<{ changes: KeyChange[]; next: WatchCursor }> {
  const { refs, truncated } = await listUnseen(store, prefix, keyspace, cursor);
  const { deliver } = advanceCursor(cursor, refs, now, { truncated });
  const { changes, objects } = await readWithinStep(deliver, (ref) => readChangeObject(store, ref));
  const { next } = advanceCursor(cursor, refs, now, { truncated, deliverAtMost: objects });
  return { changes: inCommitOrderPerKey(changes), next };
}

/**
 * Orders each key's changes by next offset, keeping the positions the key's changes had:
 * two writers' objects (a key handed over between shards) can interleave in name order.
 */
export function inCommitOrderPerKey(changes: readonly KeyChange[]): KeyChange[] {
  const byKey = new Map<string, KeyChange[]>();
  for (const c of changes) {
    const list = byKey.get(c.key) ?? [];
    list.push(c);
    byKey.set(c.key, list);
  }
  for (const list of byKey.values())
    list.sort((a, b) => (a.nextOffset < b.nextOffset ? -1 : a.nextOffset > b.nextOffset ? 1 : 0));
  const cursors = new Map<string, number>();
  return changes.map((c) => {
    const i = cursors.get(c.key) ?? 0;
    cursors.set(c.key, i + 1);
    return (byKey.get(c.key) as KeyChange[])[i] as KeyChange;
  });
}

export { changesFolder };

/** Keys whose last delivered next offset a stream remembers, to drop repeats (below). */
const REPEAT_FILTER_KEYS = 100_000;

/**
 * Drops a change that reports no progress over one already delivered on the same stream:
 * a writer announces a key's tail again when a retried append turns out to be all
 * duplicates (its first attempt's change may have been lost with a crashed writer), and a
 * watcher that saw the first announcement must not see the same change twice. A repeat can
 * still reach a watcher that resumed from a cursor in between (docs/watch.md).
 */
export class RepeatedChangeFilter {
  private readonly delivered = new LRUCache<string, bigint>({ max: REPEAT_FILTER_KEYS });

  admit(changes: readonly KeyChange[]): KeyChange[] {
    return changes.filter((c) => {
      const last = this.delivered.get(c.key);
      if (last !== undefined && c.nextOffset <= last) return false;
      this.delivered.set(c.key, c.nextOffset);
      return true;
    });
  }
}

/** Deletes a keyspace's change objects older than the change log keeps; returns how many. */
export async function expireChangeObjects(
  store: ObjectStore,
  prefix: string,
  keyspace: string,
  now: bigint,
): Promise<number> {
  const folder = changesFolder(prefix, keyspace);
  const cutoff = now - BigInt(CHANGE_LOG_RETENTION_MILLIS);
  let deleted = 0;
  let startAfter = startAfterForMillis(folder, 0n);
  for (;;) {
    // Names sort by time, so the expired objects are a prefix of the listing.
    const page = await store.list(folder, { startAfter });
    const expired = page.objects.filter((o) => (parseChangeObjectKey(folder, o.key)?.millis ?? cutoff) < cutoff);
    if (expired.length > 0) await store.delete(expired.map((o) => o.key));
    deleted += expired.length;
    const last = page.objects.at(-1);
    if (!page.truncated || !last || expired.length < page.objects.length) return deleted;
    startAfter = last.key;
  }
}
