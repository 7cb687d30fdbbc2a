// WatchKeyspace over the shared log (docs/log.md, "Reading"): every entry of a segment is
// one change (the key, its end after the entry, the segment's time), so watchers read the
// logs instead of a change log, and what they cost follows the writers, not the keys. A
// watcher's position is, per log, the next sequence number to read; the cursor is sealed
// like every token a client hands back (format/sealed-token.ts).

import type { KeyChange } from "../changes/change-log.ts";
import { CursorExpired, InvalidArgument } from "../errors.ts";
import { LogLayout, logsFolder } from "../format/log-layout.ts";
import type { LogId, SegmentIndex } from "../format/log-segment.ts";
import { sealToken, tokenBytes, unsealToken } from "../format/sealed-token.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { findLogEnd, listSegments } from "./log-lane.ts";

/** Per log (`writer/lane`), the next sequence number a watcher reads. */
export interface LogWatchCursor {
  readonly next: ReadonlyMap<string, bigint>;
}

const VERSION = 3;
/** Logs a cursor holds at most: writers times lanes; past it a cursor is refused unread. */
export const MAX_CURSOR_LOGS = 1024;
const MAX_WRITER_BYTES = 128;
const MAX_CURSOR_BYTES = 3 + MAX_CURSOR_LOGS * (1 + MAX_WRITER_BYTES + 2 + 8) + 12;

export function logKeyOf(log: LogId): string {
  return `${log.writer}/${log.lane}`;
}

function logOfKey(key: string): LogId {
  const slash = key.lastIndexOf("/");
  return { writer: key.slice(0, slash), lane: Number(key.slice(slash + 1)) };
}

/** What a cursor is bound to: the keyspace's watch over the logs. */
function boundTo(prefix: string, keyspace: string): string {
  return `${prefix}.logs/watch/${keyspace}`;
}

export function encodeLogCursor(prefix: string, keyspace: string, cursor: LogWatchCursor): string {
  const logs = [...cursor.next].sort(([a], [b]) => (a < b ? -1 : 1));
  if (logs.length > MAX_CURSOR_LOGS) throw new RangeError(`a cursor holds ${MAX_CURSOR_LOGS} logs at most`);
  const parts: Buffer[] = [Buffer.from([VERSION, logs.length & 0xff, logs.length >> 8])];
  for (const [key, next] of logs) {
    const { writer, lane } = logOfKey(key);
    const name = Buffer.from(writer, "utf8");
    const fixed = Buffer.alloc(1 + name.length + 2 + 8);
    fixed.writeUInt8(name.length, 0);
    name.copy(fixed, 1);
    fixed.writeUInt16LE(lane, 1 + name.length);
    fixed.writeBigUInt64LE(next, 3 + name.length);
    parts.push(fixed);
  }
  return sealToken(Buffer.concat(parts), boundTo(prefix, keyspace));
}

export function decodeLogCursor(prefix: string, keyspace: string, token: string): LogWatchCursor {
  const bad = (reason: string) => new InvalidArgument("cursor", reason);
  const bytes = tokenBytes(token, MAX_CURSOR_BYTES);
  if (!bytes || bytes.length < 3) throw bad("not a cursor this service issued");
  if (bytes[0] !== VERSION) {
    throw bad(
      `cursor version ${bytes[0]} is not one of the shared log's (this store's writers use it, docs/log.md): watch from now`,
    );
  }
  const body = unsealToken(bytes, boundTo(prefix, keyspace));
  if (body === "damaged") throw bad("cursor is damaged: pass it exactly as a response carried it");
  if (body === "bound elsewhere") throw bad("cursor belongs to another keyspace");
  const count = body.readUInt16LE(1);
  if (count > MAX_CURSOR_LOGS) throw bad(`names ${count} logs, more than ${MAX_CURSOR_LOGS}`);
  const next = new Map<string, bigint>();
  let at = 3;
  for (let i = 0; i < count; i++) {
    if (at + 1 > body.length) throw bad("cursor is cut short");
    const length = body.readUInt8(at);
    if (length === 0 || length > MAX_WRITER_BYTES || at + 1 + length + 10 > body.length)
      throw bad("cursor is cut short");
    const writer = body.toString("utf8", at + 1, at + 1 + length);
    const lane = body.readUInt16LE(at + 1 + length);
    next.set(logKeyOf({ writer, lane }), body.readBigUInt64LE(at + 3 + length));
    at += 11 + length;
  }
  if (at !== body.length) throw bad("cursor has bytes after its last log");
  return { next };
}

/** Every log of the store: a LIST of `.logs/`'s folders, and one per writer for its lanes. */
export async function listLogs(store: ObjectStore, prefix: string): Promise<LogId[]> {
  const logs: LogId[] = [];
  const root = logsFolder(prefix);
  for (const writer of await store.listFolders(root)) {
    for (const lane of await store.listFolders(`${root}${writer}/`)) {
      if (/^\d{1,5}$/.test(lane)) logs.push({ writer, lane: Number(lane) });
    }
  }
  return logs;
}

/** A cursor from now: every log's end. */
export async function logCursorAtEnd(
  store: ObjectStore,
  prefix: string,
  logs: readonly LogId[],
): Promise<LogWatchCursor> {
  const next = new Map<string, bigint>();
  await Promise.all(
    logs.map(async (log) => next.set(logKeyOf(log), (await findLogEnd(store, new LogLayout(prefix, log), 0n)) + 1n)),
  );
  return { next };
}

export interface LogChangesStep {
  readonly changes: KeyChange[];
  readonly next: LogWatchCursor;
}

/**
 * The keyspace's changes from the cursor on, across `logs`, and the cursor after them. A log
 * the cursor does not know (a writer started since) is read from its start. A gap where a
 * log the cursor knows should continue means its segments were deleted since: the cursor
 * is older than the log keeps (`log_retention_millis`), CursorExpired. At most `perLog`
 * segments of each log per step, so a cursor from long ago catches up in bounded steps.
 */
export async function readLogChanges(
  store: ObjectStore,
  prefix: string,
  keyspace: string,
  cursor: LogWatchCursor,
  logs: readonly LogId[],
  indexOf: (log: LogId, seq: bigint) => Promise<SegmentIndex | undefined>,
  perLog = 1000,
): Promise<LogChangesStep> {
  const next = new Map(cursor.next);
  const changes: KeyChange[] = [];
  for (const log of logs) {
    const id = logKeyOf(log);
    const known = cursor.next.get(id);
    const layout = new LogLayout(prefix, log);
    const page = await listSegments(store, layout, known ?? 0n, perLog);
    const first = page.seqs[0];
    if (known !== undefined && first !== undefined && first > known) {
      throw new CursorExpired(
        `log ${id} no longer holds segment ${known} (deleted after log_retention_millis): watch from now and read the keys' lists to catch up`,
      );
    }
    for (const seq of page.seqs) {
      const index = await indexOf(log, seq);
      // Deleted since it was listed: the same as a gap.
      if (!index) throw new CursorExpired(`log ${id} no longer holds segment ${seq}: watch from now`);
      for (const e of index.entries) {
        if (e.keyspace !== keyspace) continue;
        changes.push({
          key: e.key,
          nextOffset: e.name.lastOffset + 1n,
          nextNonce: e.name.nextNonce,
          commitMillis: index.createdMillis,
        });
      }
      next.set(id, seq + 1n);
    }
    if (!next.has(id)) next.set(id, known ?? 0n);
  }
  return { changes, next: { next } };
}
