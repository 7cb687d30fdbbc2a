// Where a watch reads a keyspace's changes from: the keyspace change log (WatchHub, the
// per-key protocol's writers write it) or the shared log (LogWatchHub, docs/log.md). A
// stream (watch-stream.ts) knows neither: it starts a cursor, steps it, and encodes it.

import type { KeyChange } from "@klstore/core";

export interface WatchFeed<Cursor> {
  /**
   * The cursor a stream starts from: the request's (checked before any storage request, so
   * a cursor this service did not issue costs nothing) or, without one, from now.
   */
  start(keyspace: string, token: string | undefined): Promise<Cursor>;
  /** The next step: waits for new changes (or a poll's worth of time), then the cursor after them. */
  next(keyspace: string, cursor: Cursor, signal: AbortSignal): Promise<{ changes: KeyChange[]; next: Cursor }>;
  encode(keyspace: string, cursor: Cursor): string;
  readonly closed: boolean;
  close(): void;
  /** Watchers waiting for their next step. */
  readonly watching: number;
  /** Polls made (LISTs of the change log or of the logs), for tests and metrics. */
  readonly polls: number;
  /** Change objects or segment indexes read. */
  readonly objectsRead: number;
}

/** Any feed, whatever its cursor (the stream hands its own cursors back to it). */
export type AnyWatchFeed = WatchFeed<unknown>;
