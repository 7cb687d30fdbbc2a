// Watches on the shared log (docs/log.md, "Reading"): each step lists every log from the
// watcher's cursor and turns the new segments' entries of the keyspace into changes. The
// indexes are shared by every watcher (one ranged GET per segment, cached) and the list of
// logs is refreshed every few seconds, so a watch costs a LIST per log per poll and nothing
// per key.

import {
  CursorExpired,
  decodeLogCursor,
  encodeLogCursor,
  inCommitOrderPerKey,
  type KeyChange,
  type LogId,
  LogLayout,
  type LogWatchCursor,
  listLogs,
  logCursorAtEnd,
  type ObjectStore,
  readLogChanges,
  readSegmentIndex,
  type SegmentIndex,
  StorageUnavailable,
} from "@klstore/core";
import type { Logger } from "@klstore/service-runtime";
import { LRUCache } from "lru-cache";
import type { WatchFeed } from "./watch-feed.ts";

/** How long the list of logs is trusted: a new writer's changes are seen this much later at most. */
const LOGS_REFRESH_MILLIS = 5000;
/** Segment indexes kept for the watchers (they are small: a segment's header and entries). */
const MAX_CACHED_INDEXES = 20_000;

export class LogWatchHub implements WatchFeed<LogWatchCursor> {
  private readonly store: ObjectStore;
  private readonly prefix: string;
  private readonly pollMillis: number;
  private readonly logger: Logger;
  private logs: { list: Promise<LogId[]>; at: number } | undefined;
  private readonly indexes = new LRUCache<string, Promise<SegmentIndex | undefined>>({ max: MAX_CACHED_INDEXES });
  /** Watchers waiting for their next step. */
  watching = 0;
  /** Steps taken (a LIST per log each). */
  polls = 0;
  /** Segment indexes read. */
  objectsRead = 0;
  closed = false;

  constructor(store: ObjectStore, prefix: string, pollMillis: number, logger: Logger) {
    this.store = store;
    this.prefix = prefix;
    this.pollMillis = pollMillis;
    this.logger = logger;
  }

  async start(keyspace: string, token: string | undefined): Promise<LogWatchCursor> {
    if (token !== undefined && token !== "") return decodeLogCursor(this.prefix, keyspace, token);
    return logCursorAtEnd(this.store, this.prefix, await this.listedLogs());
  }

  encode(keyspace: string, cursor: LogWatchCursor): string {
    return encodeLogCursor(this.prefix, keyspace, cursor);
  }

  async next(
    keyspace: string,
    cursor: LogWatchCursor,
    signal: AbortSignal,
  ): Promise<{ changes: KeyChange[]; next: LogWatchCursor }> {
    this.watching++;
    try {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.pollMillis);
        signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
      });
      if (signal.aborted || this.closed) return { changes: [], next: cursor };
      this.polls++;
      const step = await readLogChanges(
        this.store,
        this.prefix,
        keyspace,
        cursor,
        await this.listedLogs(),
        (log, seq) => this.indexOf(log, seq),
      );
      return { changes: inCommitOrderPerKey(step.changes), next: step.next };
    } catch (err) {
      if (err instanceof CursorExpired) throw err;
      // Retried on the next step; the watcher just waits one more interval.
      this.logger.warn({ err, keyspace }, "watch poll of the logs failed");
      return { changes: [], next: cursor };
    } finally {
      this.watching--;
    }
  }

  close(): void {
    this.closed = true;
  }

  private listedLogs(): Promise<LogId[]> {
    if (!this.logs || Date.now() - this.logs.at > LOGS_REFRESH_MILLIS) {
      const list = listLogs(this.store, this.prefix);
      list.catch(() => (this.logs = undefined));
      this.logs = { list, at: Date.now() };
    }
    return this.logs.list;
  }

  private indexOf(log: LogId, seq: bigint): Promise<SegmentIndex | undefined> {
    const id = `${log.writer}/${log.lane}/${seq}`;
    let index = this.indexes.get(id);
    if (!index) {
      this.objectsRead++;
      index = readSegmentIndex(this.store, new LogLayout(this.prefix, log), seq).catch((err: unknown) => {
        this.indexes.delete(id);
        if (err instanceof StorageUnavailable) return undefined; // deleted since it was listed
        throw err;
      });
      this.indexes.set(id, index);
    }
    return index;
  }
}
