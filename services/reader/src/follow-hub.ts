// Followers of a key share one poller: however many streams follow a key, the reader
// polls that key's metadata (1 GET + 2 LISTs) once per interval, and only while someone
// waits. A follower wakes when the key's next offset passes the one it knows.

import type { StoreReader } from "@klstore/core";
import type { Logger } from "@klstore/service-runtime";

interface Waiter {
  readonly after: bigint;
  readonly wake: () => void;
}

interface KeyPoller {
  readonly waiters: Set<Waiter>;
  timer: NodeJS.Timeout | undefined;
}

export class FollowHub {
  private readonly reader: StoreReader;
  private readonly pollMillis: number;
  private readonly logger: Logger;
  private readonly pollers = new Map<string, KeyPoller>();
  /** Metadata polls made, for tests and metrics. */
  polls = 0;
  /** Set at shutdown: follows end instead of waiting. */
  closed = false;

  constructor(reader: StoreReader, pollMillis: number, logger: Logger) {
    this.reader = reader;
    this.pollMillis = pollMillis;
    this.logger = logger;
  }

  /** Followers currently waiting, across keys. */
  get waiting(): number {
    let n = 0;
    for (const p of this.pollers.values()) n += p.waiters.size;
    return n;
  }

  /** Resolves once the key's next offset is above `nextOffset`, or when `signal` aborts. */
  waitForGrowth(keyspace: string, key: string, nextOffset: bigint, signal: AbortSignal): Promise<void> {
    if (signal.aborted || this.closed) return Promise.resolve();
    const id = JSON.stringify([keyspace, key]);
    let poller = this.pollers.get(id);
    if (!poller) {
      poller = { waiters: new Set(), timer: undefined };
      this.pollers.set(id, poller);
    }
    const p = poller;
    return new Promise<void>((resolve) => {
      const waiter: Waiter = {
        after: nextOffset,
        wake: () => {
          p.waiters.delete(waiter);
          signal.removeEventListener("abort", waiter.wake);
          resolve();
        },
      };
      p.waiters.add(waiter);
      signal.addEventListener("abort", waiter.wake, { once: true });
      this.schedule(id, keyspace, key, p);
    });
  }

  private schedule(id: string, keyspace: string, key: string, poller: KeyPoller): void {
    if (poller.timer) return;
    poller.timer = setTimeout(async () => {
      try {
        if (poller.waiters.size === 0) return;
        this.polls++;
        const meta = await this.reader.readKeyMetadata(keyspace, key);
        const next = meta?.nextOffset ?? 0n;
        for (const waiter of [...poller.waiters]) if (next > waiter.after) waiter.wake();
      } catch (err) {
        // A failed poll is retried on the next tick; the followers' own reads report errors.
        this.logger.warn({ err, keyspace, key }, "follow poll failed");
      } finally {
        poller.timer = undefined;
        if (poller.waiters.size > 0) this.schedule(id, keyspace, key, poller);
        else this.pollers.delete(id);
      }
    }, this.pollMillis);
  }

  close(): void {
    this.closed = true;
    for (const poller of this.pollers.values()) {
      clearTimeout(poller.timer);
      for (const waiter of [...poller.waiters]) waiter.wake();
    }
    this.pollers.clear();
  }
}
