// Where the bridge's insertions go: a batching writer in this process (the seed's design),
// or the writer service, so the bridge never competes with a writer shard for a key.
// Either way `submit` resolves once the insertion is taken (waiting while too many are
// queued: the bridge's backpressure on Kafka), and its `durable` promise once it is stored
// (or was a duplicate).
//
// Per key, one batch is being stored at a time, and only after every earlier one of its
// key is. Nonces need that order: a key's nonces are a high-water mark (an insertion below
// the key's next nonce is a duplicate), so a record stored while an earlier one of its key
// had failed would turn the earlier one, when sent again, into a "duplicate": lost. A batch
// refused with ABORTED stored nothing (Fenced: another writer, such as the member that
// owned the partition before a rebalance, committed to the key first) and is sent again
// before anything later of its key; after any other failure but a bad record, nothing
// later of that key is sent (the bridge stops; a restart replays from durable offsets).

import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import { KlstoreClient } from "@klstore/client";
import {
  type AppendEngine,
  type BatchingConfig,
  Fenced,
  type Insertion,
  InvalidArgument,
  KeyspaceNotFound,
  ResourceExhausted,
} from "@klstore/core";
import type { Logger } from "@klstore/service-runtime";
import type { Shard } from "@klstore/sharding";
import { RecordParseError } from "./record-parsers.ts";

export interface AppendSink {
  submit(keyspace: string, key: string, insertion: Insertion): Promise<{ durable: Promise<unknown> }>;
  /** Makes everything submitted so far durable (or failed). */
  flushAll(): Promise<void>;
  close(): Promise<void>;
}

/** A storage error that retrying the same record cannot fix: the record itself is bad. */
export function isRecordError(err: unknown): boolean {
  if (err instanceof RecordParseError || err instanceof InvalidArgument || err instanceof KeyspaceNotFound) return true;
  // The same refusals from the writer service.
  const code = (err as { code?: unknown }).code;
  return code === status.INVALID_ARGUMENT || code === status.NOT_FOUND;
}

/** Nothing of the batch was stored, and sending it again may succeed. */
function isAborted(err: unknown): boolean {
  return err instanceof Fenced || (err as { code?: unknown }).code === status.ABORTED;
}

/** Stores one key's insertions in order: one settled outcome per insertion, failures a suffix. */
interface BatchStore {
  append(
    keyspace: string,
    key: string,
    insertions: Insertion[],
    urgent: boolean,
  ): Promise<PromiseSettledResult<unknown>[]>;
  close(): Promise<void>;
}

interface Waiting {
  readonly insertion: Insertion;
  readonly arrived: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

interface KeyLine {
  readonly keyspace: string;
  readonly key: string;
  waiting: Waiting[];
  /** The batch being stored, if any. */
  sending: Promise<void> | undefined;
  /** Set by a failure that stops the key: everything of it from then on gets this error. */
  failed: unknown;
}

/** Longest wait before an ABORTED batch is sent again (it starts at 20 ms, doubling). */
const MAX_RETRY_DELAY_MILLIS = 1000;

export interface OrderedSinkOptions {
  /** Most insertions waiting in the sink; `submit` waits beyond it. */
  readonly maxWaiting: number;
  /** Undefined: a key's next batch goes as soon as its last is stored; else on this interval. */
  readonly sendEveryMillis?: number | undefined;
  /** A key's batch goes at once when it reaches this many insertions. */
  readonly maxBatch?: number | undefined;
  /** A batch whose oldest insertion waited this long is urgent: the store need not wait longer. */
  readonly urgentAfterMillis: number;
  readonly logger?: Logger | undefined;
}

export class OrderedSink implements AppendSink {
  private readonly lines = new Map<string, KeyLine>();
  private readonly store: BatchStore;
  private readonly options: OrderedSinkOptions;
  private waitingCount = 0;
  /** Resolved (and replaced) whenever a batch ends: what a full sink's `submit` waits for. */
  private batchEnded = Promise.withResolvers<void>();
  private flushing = 0;
  private closed = false;
  private readonly timer: Promise<void> | undefined;

  constructor(store: BatchStore, options: OrderedSinkOptions) {
    this.store = store;
    this.options = options;
    const every = options.sendEveryMillis;
    if (every !== undefined) {
      this.timer = (async () => {
        while (!this.closed) {
          await sleep(Math.max(1, every));
          for (const line of this.lines.values()) this.sendIfIdle(line);
        }
      })();
    }
  }

  async submit(keyspace: string, key: string, insertion: Insertion): Promise<{ durable: Promise<unknown> }> {
    if (this.closed) throw new Error("the sink is closed");
    const id = JSON.stringify([keyspace, key]);
    let line = this.lines.get(id);
    if (!line) {
      line = { keyspace, key, waiting: [], sending: undefined, failed: undefined };
      this.lines.set(id, line);
    }
    if (line.failed !== undefined) {
      const durable = Promise.reject(line.failed);
      durable.catch(() => {});
      return { durable };
    }
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    promise.catch(() => {});
    line.waiting.push({ insertion, arrived: Date.now(), resolve, reject });
    this.waitingCount++;
    const full = this.options.maxBatch !== undefined && line.waiting.length >= this.options.maxBatch;
    if (this.options.sendEveryMillis === undefined || full) this.sendIfIdle(line);
    // What waits belongs to keys whose batch is being stored, or goes on the next tick.
    while (this.waitingCount > this.options.maxWaiting && !this.closed) await this.batchEnded.promise;
    return { durable: promise };
  }

  private sendIfIdle(line: KeyLine): void {
    if (line.sending || line.waiting.length === 0 || line.failed !== undefined) return;
    const batch = line.waiting;
    line.waiting = [];
    this.waitingCount -= batch.length;
    line.sending = this.send(line, batch).finally(() => {
      line.sending = undefined;
      if (line.waiting.length === 0 && line.failed === undefined) {
        this.lines.delete(JSON.stringify([line.keyspace, line.key]));
      } else if (this.options.sendEveryMillis === undefined || this.flushing > 0) {
        this.sendIfIdle(line);
      }
      const ended = this.batchEnded;
      this.batchEnded = Promise.withResolvers<void>();
      ended.resolve();
    });
  }

  private async send(line: KeyLine, batch: Waiting[]): Promise<void> {
    let pending = batch;
    for (let attempt = 1; pending.length > 0; attempt++) {
      const waited = Date.now() - (pending[0] as Waiting).arrived;
      const urgent = this.flushing > 0 || this.closed || attempt > 1 || waited >= this.options.urgentAfterMillis;
      let results: PromiseSettledResult<unknown>[];
      try {
        results = await this.store.append(
          line.keyspace,
          line.key,
          pending.map((w) => w.insertion),
          urgent,
        );
      } catch (err) {
        results = pending.map(() => ({ status: "rejected", reason: err }));
      }
      const again: Waiting[] = [];
      let aborted: unknown;
      for (const [i, result] of results.entries()) {
        const waiting = pending[i] as Waiting;
        if (result.status === "fulfilled") waiting.resolve(result.value);
        else if (isAborted(result.reason)) {
          again.push(waiting);
          aborted = result.reason;
        } else {
          if (!isRecordError(result.reason)) line.failed ??= result.reason;
          waiting.reject(result.reason);
        }
      }
      pending = again;
      if (pending.length > 0) {
        this.options.logger?.warn(
          { keyspace: line.keyspace, key: line.key, records: pending.length, attempt, err: aborted },
          "another writer committed to the key first (a rebalance?); storing the records again",
        );
        await sleep(Math.min(MAX_RETRY_DELAY_MILLIS, 20 * 2 ** (attempt - 1)));
      }
    }
    if (line.failed !== undefined) {
      for (const waiting of line.waiting) waiting.reject(line.failed);
      this.waitingCount -= line.waiting.length;
      line.waiting = [];
    }
  }

  async flushAll(): Promise<void> {
    this.flushing++;
    try {
      for (;;) {
        const busy = [...this.lines.values()].filter(
          (l) => l.sending !== undefined || (l.waiting.length > 0 && l.failed === undefined),
        );
        if (busy.length === 0) return;
        for (const line of busy) this.sendIfIdle(line);
        await Promise.all(busy.map((l) => l.sending));
      }
    } finally {
      this.flushing--;
    }
  }

  async close(): Promise<void> {
    await this.flushAll();
    this.closed = true;
    this.batchEnded.resolve();
    await this.timer;
    await this.store.close();
  }
}

/** How long a key's batch waits in the sink, and how many the sink holds (the [batcher] settings). */
export type SinkPacing = Pick<BatchingConfig, "batchFlushIntervalMillis" | "writerThreadQueueCapacity">;

/**
 * Through a writer engine in this process: a batching writer commits each key's batch as one
 * object, a log writer stores them in its lanes' segments.
 */
export function writerSink(writer: AppendEngine, pacing: SinkPacing, logger?: Logger): AppendSink {
  return new OrderedSink(
    {
      async append(keyspace, key, insertions, urgent) {
        // One call per insertion, so a bad one is refused alone; admitted in order, so the
        // writer keeps them in order (one group, or several objects in a row).
        const outcomes: Promise<unknown>[] = [];
        for (const insertion of insertions) {
          for (;;) {
            try {
              outcomes.push((await writer.submit(keyspace, key, [insertion])).outcome);
              break;
            } catch (err) {
              if (!(err instanceof ResourceExhausted)) {
                outcomes.push(Promise.reject(err));
                break;
              }
              // The writer's queue is full: make it durable, then offer the insertion again.
              await writer.flushAll();
            }
          }
        }
        // The batch waited its flush interval in the sink already: the writer need not again.
        if (urgent) writer.flushKey(keyspace, key).catch(() => {});
        return Promise.allSettled(outcomes);
      },
      close: () => writer.close(),
    },
    {
      maxWaiting: pacing.writerThreadQueueCapacity,
      urgentAfterMillis: pacing.batchFlushIntervalMillis,
      logger,
    },
  );
}

/**
 * Through the writer service: each key's batch (up to `maxBatch` insertions, gathered for
 * up to `flushIntervalMillis`) is one Append call to the key's owner.
 */
export function serviceSink(
  shards: readonly Shard[],
  flushIntervalMillis: number,
  maxWaiting: number,
  logger?: Logger,
  maxBatch = 10_000,
): AppendSink {
  const client = new KlstoreClient({ writers: shards, reader: shards[0]?.address ?? "127.0.0.1:1" });
  return new OrderedSink(
    {
      async append(keyspace, key, insertions) {
        try {
          await client.append(keyspace, key, insertions);
          return insertions.map(() => ({ status: "fulfilled", value: undefined }));
        } catch (err) {
          return insertions.map(() => ({ status: "rejected", reason: err }));
        }
      },
      async close() {
        client.close();
      },
    },
    { maxWaiting, sendEveryMillis: flushIntervalMillis, maxBatch, urgentAfterMillis: 0, logger },
  );
}
