// Watchers of a keyspace share one poller: however many streams watch a keyspace, the
// reader LISTs its change log once per interval (only while someone watches) and GETs
// each new change object once; every watcher then advances its own cursor over that
// shared listing (core/changes/change-feed.ts). A watcher whose cursor is older than the
// shared listing (resumed from long ago) catches up with its own reads first.

import {
  advanceCursor,
  type ChangeObjectRef,
  changesFolder,
  encodeWatchCursor,
  inCommitOrderPerKey,
  type KeyChange,
  LOOKBACK_MILLIS,
  listChangeObjects,
  pollChanges,
  readChangeObject,
  readWithinStep,
  type StoreReader,
  startingCursor,
  type WatchCursor,
} from "@klstore/core";
import type { Logger } from "@klstore/service-runtime";
import type { WatchFeed } from "./watch-feed.ts";

interface KeyspaceFeed {
  /** Objects named at or after `listedFrom`, as of the last poll. */
  listing: ChangeObjectRef[];
  listedFrom: bigint;
  /** The time taken just before the last poll's LIST; undefined before the first poll. */
  listedAt: bigint | undefined;
  readonly bodies: Map<string, Promise<KeyChange[]>>;
  readonly waiters: Set<() => void>;
  timer: NodeJS.Timeout | undefined;
}

export interface WatchStep {
  /** Changes to deliver (possibly none: the cursor may still have moved on). */
  readonly changes: KeyChange[];
  readonly next: WatchCursor;
}

export class WatchHub implements WatchFeed<WatchCursor> {
  private readonly reader: StoreReader;
  private readonly pollMillis: number;
  private readonly logger: Logger;
  private readonly clock: () => bigint;
  private readonly feeds = new Map<string, KeyspaceFeed>();
  /** Change-log LISTs made by the shared pollers (tests and metrics). */
  polls = 0;
  /** Change objects read by the shared pollers. */
  objectsRead = 0;
  closed = false;

  constructor(reader: StoreReader, pollMillis: number, logger: Logger, clock = () => BigInt(Date.now())) {
    this.reader = reader;
    this.pollMillis = pollMillis;
    this.logger = logger;
    this.clock = clock;
  }

  async start(keyspace: string, token: string | undefined): Promise<WatchCursor> {
    return startingCursor(changesFolder(this.reader.prefix, keyspace), token, this.clock());
  }

  encode(keyspace: string, cursor: WatchCursor): string {
    return encodeWatchCursor(changesFolder(this.reader.prefix, keyspace), cursor);
  }

  /** Watchers currently waiting, across keyspaces. */
  get watching(): number {
    let n = 0;
    for (const f of this.feeds.values()) n += f.waiters.size;
    return n;
  }

  /**
   * The watcher's next step: waits for the keyspace's next poll (or reads storage itself
   * when its cursor is older than the shared listing), then advances the cursor.
   */
  async next(keyspace: string, cursor: WatchCursor, signal: AbortSignal): Promise<WatchStep> {
    const feed = this.feed(keyspace);
    if (feed.listedAt !== undefined && cursor.from < feed.listedFrom) {
      const { store, prefix } = this.reader;
      return pollChanges(store, prefix, keyspace, cursor, this.clock());
    }
    await this.waitForPoll(keyspace, feed, signal);
    if (signal.aborted || feed.listedAt === undefined || cursor.from < feed.listedFrom) {
      return { changes: [], next: cursor };
    }
    const { deliver } = advanceCursor(cursor, feed.listing, feed.listedAt);
    const { changes, objects } = await readWithinStep(deliver, (ref) => this.body(feed, ref));
    const { next } = advanceCursor(cursor, feed.listing, feed.listedAt, { deliverAtMost: objects });
    return { changes: inCommitOrderPerKey(changes), next };
  }

  close(): void {
    this.closed = true;
    for (const feed of this.feeds.values()) {
      clearTimeout(feed.timer);
      for (const wake of [...feed.waiters]) wake();
    }
  }

  private feed(keyspace: string): KeyspaceFeed {
    let feed = this.feeds.get(keyspace);
    if (!feed) {
      feed = {
        listing: [],
        listedFrom: 0n,
        listedAt: undefined,
        bodies: new Map(),
        waiters: new Set(),
        timer: undefined,
      };
      this.feeds.set(keyspace, feed);
    }
    return feed;
  }

  private body(feed: KeyspaceFeed, ref: ChangeObjectRef): Promise<KeyChange[]> {
    let body = feed.bodies.get(ref.key);
    if (!body) {
      this.objectsRead++;
      body = readChangeObject(this.reader.store, ref);
      body.catch(() => feed.bodies.delete(ref.key));
      feed.bodies.set(ref.key, body);
    }
    return body;
  }

  private waitForPoll(keyspace: string, feed: KeyspaceFeed, signal: AbortSignal): Promise<void> {
    if (signal.aborted || this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const wake = () => {
        feed.waiters.delete(wake);
        signal.removeEventListener("abort", wake);
        resolve();
      };
      feed.waiters.add(wake);
      signal.addEventListener("abort", wake, { once: true });
      this.schedule(keyspace, feed);
    });
  }

  private schedule(keyspace: string, feed: KeyspaceFeed): void {
    if (feed.timer || this.closed) return;
    const delay = feed.listedAt === undefined ? 0 : this.pollMillis;
    feed.timer = setTimeout(async () => {
      try {
        if (feed.waiters.size === 0) return;
        const now = this.clock();
        // Twice the lookback: a watcher's cursor never starts before now - LOOKBACK_MILLIS
        // after its first step, so every joined watcher finds what it needs here.
        const from = now - 2n * BigInt(LOOKBACK_MILLIS);
        this.polls++;
        const listing = await listChangeObjects(this.reader.store, this.reader.prefix, keyspace, from);
        const listed = new Set(listing.map((r) => r.key));
        for (const key of [...feed.bodies.keys()]) if (!listed.has(key)) feed.bodies.delete(key);
        feed.listing = listing;
        feed.listedFrom = from;
        feed.listedAt = now;
      } catch (err) {
        // Retried on the next tick; the watchers just wait one more interval.
        this.logger.warn({ err, keyspace }, "watch poll failed");
      } finally {
        feed.timer = undefined;
        for (const wake of [...feed.waiters]) wake();
      }
    }, delay);
  }
}
