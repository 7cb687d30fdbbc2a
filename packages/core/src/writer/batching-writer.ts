// The batching writer (seed: BatchingStoreWriter): concurrent appends to one key are
// grouped and committed as one object (group commit), so a busy key costs one PUT per
// flush instead of one per call. Each call still gets its own per-insertion outcome, and
// its promise settles only once its items are durable (or failed), so acknowledging to a
// client after it resolves is always safe.
//
// A key's group is flushed when it reaches the item or size threshold, when its oldest
// item has waited batch_flush_interval_millis (checked every batch_check_interval_millis
// by duty_cycle), or on flush_key / flush_all / close. At most one commit per key is in
// flight; calls arriving meanwhile form the next group, which keeps per-key order. At most
// max_concurrent_commits commits run across keys: a due group waits its turn (first due,
// first served) and keeps taking arrivals, so the busier the writer, the larger its
// objects, rather than many keys each committing a trickle at once. The queue is bounded
// in items and bytes: past either bound an append is refused with a retryable
// RESOURCE_EXHAUSTED instead of growing memory without limit.

import { BATCHING_DEFAULTS, type BatchingConfig, type WriterConfig } from "../config.ts";
import { ResourceExhausted, ShuttingDown } from "../errors.ts";
import type { KeyspaceSettings } from "../format/keyspace-config.ts";
import { KeyspaceLayout } from "../format/layout.ts";
import { createCodecPool } from "../workers/codec-pool.ts";
import type { AppendEngine } from "./append-engine.ts";
import { type Insertion, type ItemOutcome, validateInsertions } from "./append-plan.ts";
import {
  type CreateKeyspaceOptions,
  type Retention,
  StoreWriter,
  type StoreWriterOptions,
  type TrimOutcome,
  type WriterObserver,
} from "./store-writer.ts";

export interface BatchingStoreWriterOptions extends Omit<StoreWriterOptions, "codec"> {
  readonly batching?: Partial<BatchingConfig>;
}

interface Waiter {
  readonly count: number;
  readonly resolve: (outcomes: ItemOutcome[]) => void;
  readonly reject: (err: unknown) => void;
}

/** The calls waiting to be committed together for one key. */
class PendingGroup {
  readonly insertions: Insertion[] = [];
  readonly waiters: Waiter[] = [];
  bytes = 0;
  due = false;
  readonly firstArrivalMillis: number;
  /** Settles when this group is committed; flush_key waits on it. */
  readonly committed = Promise.withResolvers<void>();

  constructor(now: number) {
    this.firstArrivalMillis = now;
    // flush_key may never be called for this group; its failure is reported to the waiters.
    this.committed.promise.catch(() => {});
  }
}

interface KeyEntry {
  readonly keyspace: string;
  readonly key: string;
  pending: PendingGroup | undefined;
  inFlight: PendingGroup | undefined;
  /** Stored, its change queued for the change log; its callers wait for that PUT. */
  announcing: PendingGroup | undefined;
}

export class BatchingStoreWriter implements AppendEngine {
  readonly writer: StoreWriter;
  readonly batching: BatchingConfig;
  private readonly entries = new Map<string, KeyEntry>();
  private readonly timer: NodeJS.Timeout;
  private readonly admitting = new Set<Promise<unknown>>();
  /** Keys whose group is due but waits for a commit slot, in the order they became due. */
  private readonly waitingForSlot = new Set<string>();
  private runningCommits = 0;
  private queuedItems = 0;
  private queuedBytes = 0;
  private closed = false;

  constructor(options: BatchingStoreWriterOptions) {
    this.batching = { ...BATCHING_DEFAULTS, ...options.batching };
    const codec = createCodecPool(this.batching.writerThreadCount);
    this.writer = new StoreWriter({ ...options, codec });
    this.timer = setInterval(() => void this.dutyCycle(), this.batching.batchCheckIntervalMillis);
    // The timer alone never keeps a process alive; pending work is flushed by close().
    this.timer.unref();
  }

  get config(): WriterConfig {
    return this.writer.config;
  }

  get cacheBytes(): number {
    return this.writer.compactionCacheBytes;
  }

  get observer(): WriterObserver {
    return this.writer.observer;
  }

  set observer(observer: WriterObserver) {
    this.writer.observer = observer;
  }

  private reportBackgroundError: (err: unknown, what: string) => void = (err, what) =>
    process.emitWarning(`${what} failed: ${(err as Error).message}`, "KlstoreCompactionWarning");

  /** Compaction failures (an append's work done; it was acknowledged already). */
  get onBackgroundError(): (err: unknown, what: string) => void {
    return this.reportBackgroundError;
  }

  set onBackgroundError(report: (err: unknown, what: string) => void) {
    this.reportBackgroundError = report;
    this.writer.onCompactionError = (layout, err) => report(err, `compaction of ${layout.folder}`);
  }

  readKeyspaceSettings(keyspace: string): Promise<KeyspaceSettings> {
    return this.writer.readKeyspaceSettings(keyspace);
  }

  createKeyspace(keyspace: string, options?: CreateKeyspaceOptions): Promise<KeyspaceSettings> {
    return this.writer.createKeyspace(keyspace, options);
  }

  keyspaceSettings(keyspace: string): Promise<KeyspaceSettings> {
    return this.writer.keyspaceSettings(keyspace);
  }

  setRetention(keyspace: string, retention: Retention | undefined): Promise<KeyspaceSettings> {
    return this.writer.setRetention(keyspace, retention);
  }

  /** Trims after committing what is pending for the key, so every accepted item has its offset. */
  async trim(keyspace: string, key: string, before: bigint): Promise<TrimOutcome> {
    await this.flushKey(keyspace, key);
    return this.writer.trim(keyspace, key, before);
  }

  applyRetention(keyspace: string, key: string): Promise<TrimOutcome | undefined> {
    return this.writer.applyRetention(keyspace, key);
  }

  /** Queues insertions for one key; resolves with their outcomes once they are durable. */
  async appendList(keyspace: string, key: string, insertions: readonly Insertion[]): Promise<ItemOutcome[]> {
    const { outcome } = await this.submit(keyspace, key, insertions);
    return outcome;
  }

  /**
   * Queues insertions for one key and resolves as soon as they are accepted (validated and
   * queued), with the promise of their outcomes. For callers that acknowledge acceptance
   * before durability; `outcome` must still be handled (it rejects if the commit fails).
   */
  async submit(
    keyspace: string,
    key: string,
    insertions: readonly Insertion[],
  ): Promise<{ outcome: Promise<ItemOutcome[]> }> {
    if (this.closed) throw new ShuttingDown("the writer is closing and accepts no more appends");
    validateInsertions(insertions, this.writer.config, this.writer.config.clock());
    const folder = new KeyspaceLayout(this.writer.prefix, keyspace).key(key).folder;
    // A missing keyspace fails this call alone, not the group it would have joined.
    await this.admit(keyspace);
    if (insertions.length === 0) return { outcome: Promise.resolve([]) };
    const bytes = insertions.reduce((n, i) => n + i.value.byteLength, 0);
    this.reserve(insertions.length, bytes);

    const now = Date.now();
    const clock = this.writer.config.clock();
    let entry = this.entries.get(folder);
    if (!entry) {
      entry = { keyspace, key, pending: undefined, inFlight: undefined, announcing: undefined };
      this.entries.set(folder, entry);
    }
    const group = (entry.pending ??= new PendingGroup(now));
    // Missing timestamps are the arrival time, not the (later) commit time.
    for (const ins of insertions)
      group.insertions.push(ins.timestamp === undefined ? { ...ins, timestamp: clock } : ins);
    group.bytes += bytes;
    const outcome = new Promise<ItemOutcome[]>((resolve, reject) => {
      group.waiters.push({ count: insertions.length, resolve, reject });
    });
    if (
      this.batching.batchFlushIntervalMillis === 0 ||
      group.insertions.length >= this.batching.batchFlushItemCountThreshold ||
      group.bytes >= this.batching.batchFlushSizeThreshold
    ) {
      group.due = true;
      this.kick(folder, entry);
    }
    return { outcome };
  }

  /** Commits what is pending for one key; rejects if that commit failed, or the keyspace does not exist. */
  async flushKey(keyspace: string, key: string): Promise<void> {
    const folder = new KeyspaceLayout(this.writer.prefix, keyspace).key(key).folder;
    // Nothing pending is no answer for a keyspace that is not there (cached after the first).
    if (!this.entries.has(folder)) await this.writer.keyspaceSettings(keyspace);
    await this.flushEntry(folder);
  }

  /** Commits what is pending for every key; rejects with the first failure. */
  async flushAll(): Promise<void> {
    await Promise.allSettled(this.admitting);
    const results = await Promise.allSettled([...this.entries.keys()].map((folder) => this.flushEntry(folder)));
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  /** Flushes groups whose oldest item has waited the flush interval; resolves when those commits end. */
  async dutyCycle(): Promise<void> {
    const cutoff = Date.now() - this.batching.batchFlushIntervalMillis;
    const started: Promise<void>[] = [];
    for (const [folder, entry] of this.entries) {
      const group = entry.pending;
      if (group && group.firstArrivalMillis <= cutoff) {
        group.due = true;
        this.kick(folder, entry);
        started.push(group.committed.promise);
      }
    }
    // Failures reach the appends' callers; the duty cycle itself has nothing to report.
    await Promise.allSettled(started);
  }

  invalidate(keyspace: string, key: string): void {
    this.writer.invalidate(keyspace, key);
  }

  /** Items and value bytes accepted but not yet committed. */
  get queued(): { items: number; bytes: number } {
    return { items: this.queuedItems, bytes: this.queuedBytes };
  }

  /** Refuses new appends, commits everything pending, then stops the worker threads. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    try {
      await this.flushAll();
    } finally {
      await this.writer.close();
    }
  }

  private reserve(items: number, bytes: number): void {
    const { writerThreadQueueCapacity: maxItems, writerQueueMaxBytes: maxBytes } = this.batching;
    // An empty queue takes any single valid call, so a large call is never refused forever.
    const empty = this.queuedItems === 0;
    if (!empty && (this.queuedItems + items > maxItems || this.queuedBytes + bytes > maxBytes)) {
      throw new ResourceExhausted(
        `writer queue is full (${this.queuedItems} items, ${this.queuedBytes} bytes waiting; ` +
          `limits ${maxItems} items, ${maxBytes} bytes); retry later`,
      );
    }
    this.queuedItems += items;
    this.queuedBytes += bytes;
  }

  /**
   * Checks the keyspace of an arriving call. Flushes wait for the calls being admitted, so
   * flush_key and flush_all cover every append called before them, even one still waiting
   * for its keyspace's settings to be read.
   */
  private admit(keyspace: string): Promise<unknown> {
    const admission = this.writer.keyspaceSettings(keyspace);
    this.admitting.add(admission);
    const done = () => this.admitting.delete(admission);
    admission.then(done, done);
    return admission;
  }

  private async flushEntry(folder: string): Promise<void> {
    await Promise.allSettled(this.admitting);
    const entry = this.entries.get(folder);
    if (!entry) return;
    // The pending group commits after the one in flight, and its change is announced after
    // the announcing one's, so waiting on it covers them all.
    const group = entry.pending ?? entry.inFlight ?? entry.announcing;
    if (!group) return;
    group.due = true;
    this.kick(folder, entry);
    await group.committed.promise;
  }

  /** Queues the key's pending group for a commit slot if it is due and none is in flight. */
  private kick(folder: string, entry: KeyEntry): void {
    if (entry.inFlight || !entry.pending?.due) return;
    this.waitingForSlot.add(folder);
    this.startWaitingCommits();
  }

  /** Starts waiting keys' commits while slots are free. */
  private startWaitingCommits(): void {
    for (const folder of this.waitingForSlot) {
      if (this.runningCommits >= this.batching.maxConcurrentCommits) return;
      this.waitingForSlot.delete(folder);
      const entry = this.entries.get(folder);
      const group = entry?.pending;
      if (!entry || entry.inFlight || !group?.due) continue;
      entry.pending = undefined;
      entry.inFlight = group;
      this.runningCommits++;
      let free = true;
      // The key's next group may start once this one is stored: the change log's PUT, which
      // its callers still wait for, is shared by every key and need not hold this one back.
      const keyFree = () => {
        if (!free) return;
        free = false;
        this.runningCommits--;
        entry.inFlight = undefined;
        entry.announcing = group;
        // A group that became due meanwhile goes to the back of the line, so one busy key
        // cannot keep a slot from the keys waiting for one.
        if (entry.pending) this.kick(folder, entry);
        this.startWaitingCommits();
      };
      void this.commit(entry, group, keyFree).finally(() => {
        keyFree();
        if (entry.announcing === group) entry.announcing = undefined;
        if (!entry.pending && !entry.inFlight && !entry.announcing && this.entries.get(folder) === entry) {
          this.entries.delete(folder);
        }
      });
    }
  }

  /**
   * Commits a group as one object, or as several when it holds more than batch_max_bytes:
   * in order, each a run of whole calls, so every call's items share one object and one
   * fate. After a failure the calls not yet committed get the error; earlier ones keep
   * their outcomes.
   */
  private async commit(entry: KeyEntry, group: PendingGroup, keyFree: () => void): Promise<void> {
    let next = 0;
    try {
      const chunks = [...chunksOf(group, this.batching.batchMaxBytes)];
      for (const [n, chunk] of chunks.entries()) {
        const insertions = group.insertions.slice(chunk.firstInsertion, chunk.endInsertion);
        // Only the last chunk frees the key early: earlier ones keep the simple order of a
        // failure (every call from the failed chunk on gets the error).
        const onKeyFree = n === chunks.length - 1 ? keyFree : undefined;
        const outcomes = await this.writer.commitValidated(entry.keyspace, entry.key, insertions, { onKeyFree });
        let start = 0;
        for (const waiter of group.waiters.slice(chunk.firstWaiter, chunk.endWaiter)) {
          waiter.resolve(outcomes.slice(start, start + waiter.count));
          start += waiter.count;
        }
        next = chunk.endWaiter;
      }
      group.committed.resolve();
    } catch (err) {
      // Nothing of a failed chunk was acknowledged; every caller in it and after it gets the error.
      for (const waiter of group.waiters.slice(next)) waiter.reject(err);
      group.committed.reject(err);
    } finally {
      this.queuedItems -= group.insertions.length;
      this.queuedBytes -= group.bytes;
    }
  }
}

interface Chunk {
  readonly firstWaiter: number;
  readonly endWaiter: number;
  readonly firstInsertion: number;
  readonly endInsertion: number;
}

/** Splits a group between calls into runs of at most `maxBytes` value bytes (one call may exceed it alone). */
function* chunksOf(group: PendingGroup, maxBytes: number): Generator<Chunk> {
  let firstWaiter = 0;
  let firstInsertion = 0;
  let insertion = 0;
  let bytes = 0;
  for (const [w, waiter] of group.waiters.entries()) {
    let callBytes = 0;
    for (let i = insertion; i < insertion + waiter.count; i++) {
      callBytes += (group.insertions[i] as Insertion).value.byteLength;
    }
    if (bytes > 0 && bytes + callBytes > maxBytes) {
      yield { firstWaiter, endWaiter: w, firstInsertion, endInsertion: insertion };
      firstWaiter = w;
      firstInsertion = insertion;
      bytes = 0;
    }
    bytes += callBytes;
    insertion += waiter.count;
  }
  yield { firstWaiter, endWaiter: group.waiters.length, firstInsertion, endInsertion: insertion };
}
