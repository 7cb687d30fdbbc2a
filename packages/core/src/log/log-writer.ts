// The log writer (docs/log.md): appends of every key go into the lane of the key's slot, and
// each lane writes one segment at a time holding every key's batch that arrived meanwhile
// (group commit across keys: one PUT per flush). Calls are acknowledged once their segment
// is stored. A lane takes a slot over before it plans the slot's first append (takeover.ts)
// and plans each key against its state: its per-key objects continued by its entries in the
// logs (slot-index.ts). Planning happens when a segment is built, after the previous one's
// outcome is known, so no planned batch is ever built on one that may not exist.

import { LRUCache } from "lru-cache";
import { WRITER_DEFAULTS, type WriterConfig } from "../config.ts";
import { Fenced, ResourceExhausted, ShuttingDown, StorageUnavailable } from "../errors.ts";
import type { KeyspaceSettings } from "../format/keyspace-config.ts";
import { type KeyLayout, KeyspaceLayout } from "../format/layout.ts";
import { LogLayout } from "../format/log-layout.ts";
import {
  checkEntryBody,
  type EntryInput,
  type FencedSlot,
  type LogId,
  type SegmentIndex,
  type SlotProgress,
} from "../format/log-segment.ts";
import { type ObjectStore, readRange } from "../storage/object-store.ts";
import type { AppendEngine } from "../writer/append-engine.ts";
import {
  type Insertion,
  type ItemOutcome,
  type KeyTail,
  planAppend,
  validateInsertions,
} from "../writer/append-plan.ts";
import { KeyQueue } from "../writer/key-queue.ts";
import { readTailAndClaims, stateFromTail } from "../writer/key-state.ts";
import {
  type CreateKeyspaceOptions,
  type Retention,
  StoreWriter,
  type TrimOutcome,
  type WriterObserver,
} from "../writer/store-writer.ts";
import { LogKeyspaces } from "./log-keyspaces.ts";
import { findLogEnd, LaneStale, type LaneWrite, LogLane, listSegments, readSegmentIndex } from "./log-lane.ts";
import { derivedWrite, type MaterializedTail, materializeKey } from "./materialize.ts";
import { continueTail, SlotIndex } from "./slot-index.ts";
import { createSlotRecord, rangesOf, readSlotRecord, type SlotRecord, slotOf } from "./slot-records.ts";
import { type SlotEntry, slotEntries, takeSlots } from "./takeover.ts";

export interface LogConfig {
  /** Logs this writer writes, each with one segment PUT in flight (docs/log.md). */
  logLanes: number;
  /** How long a lane waits for more appends before it flushes (0: at once). */
  logFlushIntervalMillis: number;
  /** A lane flushes once this many value bytes are pending; larger groups take several segments. */
  logSegmentMaxBytes: number;
  /** Value bytes accepted but not yet stored across lanes before appends are refused. */
  logQueueMaxBytes: number;
  /** A slot is materialized once its oldest entry has waited this long (docs/log.md). */
  materializeIntervalMillis: number;
  /** Segments are kept at least this long after they were written (watchers resume from them). */
  logRetentionMillis: number;
  /** A segment is deleted no sooner than this after its entries were materialized. */
  logDeleteDelayMillis: number;
  /** Bytes of this writer's recent segments kept for materialization (not read back). */
  logCacheBytes: number;
  /** How often due materializations and deletions are looked for (0: only when asked). */
  logDutyCycleMillis: number;
}

export const LOG_DEFAULTS: LogConfig = {
  logLanes: 2,
  logFlushIntervalMillis: 0,
  logSegmentMaxBytes: 8 * 1024 * 1024,
  logQueueMaxBytes: 256 * 1024 * 1024,
  materializeIntervalMillis: 60_000,
  logRetentionMillis: 3_600_000,
  logDeleteDelayMillis: 60_000,
  logCacheBytes: 256 * 1024 * 1024,
  logDutyCycleMillis: 1000,
};

export interface LogWriterOptions {
  readonly store: ObjectStore;
  readonly prefix?: string;
  /** This writer's name: its logs are `.logs/{name}/{lane}/` (a shard name, or `cli-{uuid}`). */
  readonly name: string;
  readonly config?: Partial<WriterConfig>;
  readonly log?: Partial<LogConfig>;
}

interface Waiter {
  readonly count: number;
  readonly resolve: (outcomes: ItemOutcome[]) => void;
  readonly reject: (err: unknown) => void;
}

/** One key's calls waiting for the same segment. */
interface Group {
  readonly keyspace: string;
  readonly key: string;
  readonly folder: string;
  readonly slot: number;
  readonly insertions: Insertion[];
  readonly waiters: Waiter[];
  bytes: number;
}

/** A segment as built: its groups, and what each key's state becomes once it is stored. */
interface Plan {
  readonly groups: Group[];
  readonly outcomes: ItemOutcome[][];
  readonly tails: (KeyTail | undefined)[];
  readonly entries: EntryInput[];
  /** Materialization progress it records, and who waits for it to be stored. */
  readonly progress: ProgressRecord[];
}

/** Progress of a materialization round, to be recorded in the lane's next segment. */
interface ProgressRecord {
  readonly progress: readonly SlotProgress[];
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

export class LogWriter implements AppendEngine {
  /** Keyspace configs and their settings (the per-key protocol's writer, for those alone). */
  readonly keyspaces: StoreWriter;
  /** Which keyspaces were created on the log (their new keys cost no LIST). */
  readonly logKeyspaces: LogKeyspaces;
  readonly store: ObjectStore;
  readonly prefix: string;
  readonly name: string;
  readonly config: WriterConfig;
  readonly logConfig: LogConfig;
  private readonly lanes: LaneRunner[];
  /** Admissions run one at a time per key, so a key's calls join segments in call order. */
  private readonly admissions = new KeyQueue();
  private queuedBytes = 0;
  private queuedItems = 0;
  private closed = false;
  private stale: LaneStale | undefined;

  constructor(options: LogWriterOptions) {
    this.store = options.store;
    this.prefix = options.prefix ?? "";
    this.name = options.name;
    this.config = { ...WRITER_DEFAULTS, ...options.config };
    this.logConfig = { ...LOG_DEFAULTS, ...options.log };
    this.keyspaces = new StoreWriter({ store: this.store, prefix: this.prefix, config: this.config });
    this.logKeyspaces = new LogKeyspaces(this.store, this.prefix);
    this.lanes = Array.from(
      { length: this.logConfig.logLanes },
      (_, lane) => new LaneRunner(this, { writer: this.name, lane }),
    );
  }

  private timer: NodeJS.Timeout | undefined;
  private cycle: Promise<void> | undefined;

  /** Opens every lane after any older instance of this writer (restart fences). */
  async open(): Promise<void> {
    await Promise.all(this.lanes.map((l) => l.lane.open()));
    if (this.logConfig.logDutyCycleMillis > 0) {
      this.timer = setInterval(() => {
        this.cycle ??= this.dutyCycle()
          .catch((err: unknown) => this.onBackgroundError(err, "log materialization or deletion"))
          .finally(() => (this.cycle = undefined));
      }, this.logConfig.logDutyCycleMillis);
      // The timer alone never keeps a process alive; close() materializes nothing it must not.
      this.timer.unref();
    }
  }

  /**
   * Creates, a few at a time, the first records of those of `slots` (the ones the shard ring
   * gives this writer) that have none yet, so that their first appends take no slot.
   * Background work: a failure is reported, and the slot is taken on its first append.
   */
  prepareNewSlots(slots: readonly number[], concurrency = 16): Promise<void> {
    const queue = [...slots];
    const work = async () => {
      for (let slot = queue.shift(); slot !== undefined && !this.closed; slot = queue.shift()) {
        const runner = this.lanes[slot % this.lanes.length] as LaneRunner;
        await runner.prepareNewSlot(slot).catch((err: unknown) => this.onBackgroundError(err, `creating slot ${slot}`));
      }
    };
    const all = Promise.all(Array.from({ length: concurrency }, work)).then(() => {});
    this.preparations.add(all);
    void all.finally(() => this.preparations.delete(all));
    return all;
  }

  private readonly preparations = new Set<Promise<void>>();

  /** Materializes the slots that are due and deletes the segments nothing needs any more. */
  async dutyCycle(): Promise<void> {
    for (const lane of this.lanes) await lane.materialize(false);
    for (const lane of this.lanes) await lane.collectGarbage();
  }

  /** Materializes every entry of every owned slot now (a CLI run before it exits, tests). */
  async materializeAll(): Promise<void> {
    await this.flushAll();
    for (const lane of this.lanes) await lane.materialize(true);
  }

  /** Deletes the segments of this writer's logs that nothing needs any more (docs/log.md). */
  async collectGarbage(): Promise<number> {
    let deleted = 0;
    for (const lane of this.lanes) deleted += await lane.collectGarbage();
    return deleted;
  }

  /** Background materialization and deletion never fail an append; they are reported here. */
  onBackgroundError: (err: unknown, what: string) => void = (err, what) => {
    process.emitWarning(`${what} failed: ${(err as Error).message}`, "KlstoreLogWarning");
  };

  /** Told about stored batches (an entry each), for metrics. */
  observer: WriterObserver = {};

  readKeyspaceSettings(keyspace: string): Promise<KeyspaceSettings> {
    return this.keyspaces.readKeyspaceSettings(keyspace);
  }

  /** Items and value bytes accepted and not yet stored. */
  get queued(): { items: number; bytes: number } {
    return { items: this.queuedItems, bytes: this.queuedBytes };
  }

  /** Bytes of this writer's recent segments kept for materialization. */
  get cacheBytes(): number {
    return this.lanes.reduce((n, l) => n + l.cachedBytes, 0);
  }

  /** Creates a keyspace on the log: marked first (log-keyspaces.ts), then its config. */
  async createKeyspace(keyspace: string, options?: CreateKeyspaceOptions): Promise<KeyspaceSettings> {
    await this.logKeyspaces.mark(keyspace);
    return this.keyspaces.createKeyspace(keyspace, options);
  }

  keyspaceSettings(keyspace: string): Promise<KeyspaceSettings> {
    return this.keyspaces.keyspaceSettings(keyspace);
  }

  /** Appends to one key; resolves with each insertion's outcome once its segment is stored. */
  async appendList(keyspace: string, key: string, insertions: readonly Insertion[]): Promise<ItemOutcome[]> {
    return (await this.submit(keyspace, key, insertions)).outcome;
  }

  /**
   * Validates and queues a call; resolves once it holds its place in the key's order, with
   * the promise of its outcomes (rejected when its segment fails).
   */
  async submit(
    keyspace: string,
    key: string,
    insertions: readonly Insertion[],
  ): Promise<{ outcome: Promise<ItemOutcome[]> }> {
    if (this.stale) throw new Fenced(keyspace, key, -1n);
    if (this.closed) throw new ShuttingDown("the writer is closing and accepts no more appends");
    const now = this.config.clock();
    validateInsertions(insertions, this.config, now);
    await this.keyspaces.keyspaceSettings(keyspace);
    if (insertions.length === 0) return { outcome: Promise.resolve([]) };
    const layout = new KeyspaceLayout(this.prefix, keyspace).key(key);
    const slot = slotOf(keyspace, key);
    const runner = this.lanes[slot % this.lanes.length] as LaneRunner;
    const bytes = insertions.reduce((n, i) => n + i.value.byteLength, 0);
    if (this.queuedBytes > 0 && this.queuedBytes + bytes > this.logConfig.logQueueMaxBytes) {
      throw new ResourceExhausted(
        `writer queue is full (${this.queuedBytes} bytes waiting, limit ${this.logConfig.logQueueMaxBytes}); retry later`,
      );
    }
    this.queuedBytes += bytes;
    this.queuedItems += insertions.length;
    const done = () => {
      this.queuedBytes -= bytes;
      this.queuedItems -= insertions.length;
    };
    try {
      return await this.admissions.run(layout.folder, async () => {
        await runner.ensureKey(slot, layout);
        // Missing timestamps are the arrival time, not the (later) flush time.
        const stamped = insertions.map((i) => (i.timestamp === undefined ? { ...i, timestamp: now } : i));
        const outcome = runner.enqueue({ keyspace, key, folder: layout.folder, slot }, stamped, bytes);
        void outcome.then(done, done);
        return { outcome };
      });
    } catch (err) {
      done();
      throw err;
    }
  }

  /** Resolves once everything accepted so far is stored (or failed). */
  async flushAll(): Promise<void> {
    await this.admissions.idle();
    await Promise.all(this.lanes.map((l) => l.idle()));
  }

  /** The log writer has no per-key queue to flush: a key's calls are in its lane. */
  async flushKey(_keyspace: string, _key: string): Promise<void> {
    await this.flushAll();
  }

  /**
   * Trims a key so that `before` becomes its first offset (docs/log.md, "Everything on the
   * log"): what is pending for it is stored, its slot materialized (the progress stored, so
   * readers no longer show its entries), then its per-key objects are trimmed as without a
   * log (docs/format.md, "Trim"). Offsets and nonces go on where they were.
   */
  async trim(keyspace: string, key: string, before: bigint): Promise<TrimOutcome> {
    const layout = new KeyspaceLayout(this.prefix, keyspace).key(key);
    await this.keyspaces.keyspaceSettings(keyspace);
    const slot = slotOf(keyspace, key);
    const runner = this.lanes[slot % this.lanes.length] as LaneRunner;
    await runner.prepareTrim(slot, layout);
    await this.flushAll();
    await runner.materializeSlot(slot);
    // The per-key protocol's state of the key would be from before the materialization.
    this.keyspaces.invalidate(keyspace, key);
    try {
      return await this.keyspaces.trim(keyspace, key, before);
    } finally {
      runner.forgetMaterialized(slot, layout);
    }
  }

  setRetention(keyspace: string, retention: Retention | undefined): Promise<KeyspaceSettings> {
    return this.keyspaces.setRetention(keyspace, retention);
  }

  /** Applies the keyspace's retention to one key, on its per-key objects once materialized. */
  async applyRetention(keyspace: string, key: string): Promise<TrimOutcome | undefined> {
    const { retention } = await this.keyspaces.keyspaceSettings(keyspace);
    if (!retention) return undefined;
    const layout = new KeyspaceLayout(this.prefix, keyspace).key(key);
    const slot = slotOf(keyspace, key);
    const runner = this.lanes[slot % this.lanes.length] as LaneRunner;
    await runner.prepareTrim(slot, layout);
    await runner.materializeSlot(slot);
    this.keyspaces.invalidate(keyspace, key);
    try {
      return await this.keyspaces.applyRetention(keyspace, key);
    } finally {
      runner.forgetMaterialized(slot, layout);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await Promise.all(this.preparations);
    await this.flushAll();
    await this.cycle;
    await this.keyspaces.close();
  }

  /** A newer instance of this writer has taken its logs over: every later call is refused. */
  markStale(err: LaneStale): void {
    this.stale ??= err;
  }

  get isStale(): boolean {
    return this.stale !== undefined;
  }
}

/** One lane: its log, the slots it owns and their entries, and its flush loop. */
class LaneRunner {
  readonly lane: LogLane;
  private readonly writer: LogWriter;
  private readonly owned = new Map<number, SlotRecord>();
  /** Per slot, the newest record version a fence of this log named: owning older is void. */
  private readonly fencedAt = new Map<number, bigint>();
  private readonly taking = new Map<number, Promise<boolean>>();
  /** Slots being created ahead of their first append (prepareNewSlot). */
  private readonly preparing = new Map<number, Promise<void>>();
  private readonly index = new SlotIndex();
  /** Key states of keys with calls pending or in flight (never evicted meanwhile). */
  private readonly active = new Map<string, { tail: KeyTail; slot: number; calls: number }>();
  private readonly idleTails: LRUCache<string, { tail: KeyTail; slot: number }>;
  private pending = new Map<string, Group>();
  private pendingBytes = 0;
  private running: Promise<void> | undefined;
  /** The plan of a segment whose outcome is unknown (lane.resolve() settles it). */
  private unresolved: Plan | undefined;
  /** This lane's recent segments' bytes, for materialization without reading them back. */
  private readonly recentSegments: LRUCache<bigint, Uint8Array>;
  /** Per segment of this lane's log: when it was written, the slots its entries are in. */
  private readonly segments = new Map<bigint, { createdMillis: bigint; slots: Set<number> }>();
  /** Per owned slot: every entry of it in this lane's log up to `through` is materialized, since `at`. */
  private readonly progress = new Map<number, { through: bigint; at: bigint }>();
  /** The last sequence number of this lane's log whose slots are known (earlier ones were read). */
  private scannedBelow: bigint | undefined;
  private materializing: Promise<void> | undefined;
  /** Progress waiting for the next segment (docs/log.md: readers hide what it covers). */
  private pendingProgress: ProgressRecord[] = [];

  constructor(writer: LogWriter, log: LogId) {
    this.writer = writer;
    this.lane = new LogLane({ store: writer.store, prefix: writer.prefix, log, clock: writer.config.clock });
    this.idleTails = new LRUCache({ max: writer.config.maxCachedKeys });
    this.recentSegments = new LRUCache({
      maxSize: Math.max(1, writer.logConfig.logCacheBytes),
      sizeCalculation: (b) => Math.max(1, b.byteLength),
    });
  }

  /** Takes the key's slot if needed and makes its state known, before its call is queued. */
  async ensureKey(slot: number, layout: KeyLayout): Promise<void> {
    await this.ensureSlot(slot, layout);
    const active = this.active.get(layout.folder);
    if (active) {
      active.calls++;
      return;
    }
    const tail = this.idleTails.get(layout.folder)?.tail ?? (await this.recoverTail(slot, layout));
    // The slot may have been fenced away while the key was read: its entries are unknown now.
    if (!this.owned.has(slot)) throw new Fenced(layout.keyspaceLayout.keyspace, layout.key, tail.nextOffset);
    this.idleTails.delete(layout.folder);
    this.active.set(layout.folder, { tail, slot, calls: 1 });
  }

  private async recoverTail(slot: number, layout: KeyLayout): Promise<KeyTail> {
    const objects = await this.materializedEnd(slot, layout);
    return continueTail(objects, this.index.entriesOf(slot, layout.folder), layout.folder);
  }

  /**
   * Where the key's per-key objects end: known to the slot index (docs/log.md, "Keys of new
   * slots"), else one LIST of its folder (+ a GET with a watermark), then known.
   */
  private async materializedEnd(slot: number, layout: KeyLayout): Promise<KeyTail> {
    const { keyspace } = layout.keyspaceLayout;
    const known = this.index.knownMaterialized(
      slot,
      layout.folder,
      await this.writer.logKeyspaces.createdOnLog(keyspace),
    );
    if (known) return known;
    const tail = await this.listedTail(layout);
    this.index.knowMaterialized(slot, layout.folder, keyspace, layout.key, tail);
    return tail;
  }

  /** Where the key's per-key objects end, as a LIST of its folder (+ a GET with a watermark) says. */
  private async listedTail(layout: KeyLayout): Promise<KeyTail> {
    const { tail } = await readTailAndClaims(this.writer.store, layout);
    return stateFromTail(tail, 0).tail;
  }

  /**
   * Materializes the owned slots whose oldest entry has waited materialize_interval_millis
   * (all of them when `all`): one object per key with entries (materialize.ts). Runs one
   * round at a time, beside appends: a round covers the entries there when it starts.
   */
  materialize(all: boolean): Promise<void> {
    this.materializing ??= this.materializeRound(all).finally(() => (this.materializing = undefined));
    return this.materializing;
  }

  /**
   * Materializes one slot now, after any round already running, and waits for its progress
   * to be stored: a trim then works on per-key objects holding every entry of the key.
   */
  async materializeSlot(slot: number): Promise<void> {
    await this.materializing;
    this.materializing = this.materializeRound(true, slot).finally(() => (this.materializing = undefined));
    await this.materializing;
  }

  /** Forgets where a key's per-key objects end (a trim changed them): read again when needed. */
  forgetMaterialized(slot: number, layout: KeyLayout): void {
    this.index.forgetMaterialized(slot, layout.folder, layout.keyspaceLayout.keyspace, layout.key);
  }

  /** Takes the key's slot (if needed) so that it can be materialized and trimmed. */
  async prepareTrim(slot: number, layout: KeyLayout): Promise<void> {
    await this.ensureSlot(slot, layout);
  }

  private async materializeRound(all: boolean, only?: number): Promise<void> {
    const { store, prefix, config, logConfig } = this.writer;
    if (only === undefined) await this.adoptOwnSlots();
    const now = config.clock();
    const progress: SlotProgress[] = [];
    for (const slot of this.index.owned) {
      if (only !== undefined && slot !== only) continue;
      const { keys, oldestMillis } = this.index.keysOf(slot);
      if (oldestMillis === undefined) continue;
      if (!all && oldestMillis > now - BigInt(logConfig.materializeIntervalMillis)) continue;
      // Every entry of the slot in this lane's log up to here is among `keys` now.
      const through = this.lane.nextSeq - 1n;
      // Per source log, the newest segment whose entries of the slot this round covers.
      const sources = new Map<string, SlotProgress>();
      for (const [, k] of keys) {
        for (const e of k.entries) {
          const id = `${e.log.writer}\u0000${e.log.lane}`;
          const seen = sources.get(id);
          if (!seen || seen.through < e.seq) sources.set(id, { slot, source: e.log, through: e.seq });
        }
      }
      sources.set(`${this.lane.log.writer}\u0000${this.lane.log.lane}`, { slot, source: this.lane.log, through });
      for (const [folder, k] of keys) {
        const layout = new KeyspaceLayout(prefix, k.keyspace).key(k.key);
        const write = derivedWrite(store, layout);
        let after: MaterializedTail;
        try {
          const tail = await this.materializedEnd(slot, layout);
          after = await materializeKey(layout, tail, [...k.entries], (e) => this.bodyOf(e), write);
        } catch (err) {
          if (!(err instanceof StorageUnavailable)) throw err;
          // An entry's segment is gone: a writer that owned the slot before materialized it
          // and deleted it. The key's per-key objects hold it now; go on from where they end.
          const tail = await this.listedTail(layout);
          after = await materializeKey(layout, tail, [...k.entries], (e) => this.bodyOf(e), write);
        }
        this.index.materialized(slot, folder, after);
      }
      if (this.owned.has(slot)) this.progress.set(slot, { through, at: config.clock() });
      progress.push(...sources.values());
      await this.dropMaterializedRanges(slot);
    }
    // Readers hide the entries it covers once it is stored: their per-key objects exist.
    if (progress.length > 0) await this.recordProgress(progress);
  }

  /** Records materialization progress in the lane's next segment; resolves once it is stored. */
  private recordProgress(progress: readonly SlotProgress[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pendingProgress.push({ progress, resolve, reject });
      this.kick();
    });
  }

  /**
   * Once a slot's entries in earlier owners' logs are all materialized, its next record
   * version lists those ranges no more, so their segments can go (their writers check the
   * record before deleting them). Losing the version race means the slot was taken meanwhile:
   * this lane learns it from its next write.
   */
  private async dropMaterializedRanges(slot: number): Promise<void> {
    const record = this.owned.get(slot);
    if (!record || record.previous.length === 0) return;
    const inPrevious = (e: SlotEntry) =>
      record.previous.some(
        (r) =>
          r.log.writer === e.log.writer &&
          r.log.lane === e.log.lane &&
          e.seq >= r.from &&
          (r.to === undefined || e.seq < r.to),
      );
    if (this.index.keysOf(slot).keys.some(([, k]) => k.entries.some(inPrevious))) return;
    const next: SlotRecord = { ...record, version: record.version + 1n, previous: [] };
    if (await createSlotRecord(this.writer.store, this.writer.prefix, next)) {
      if (this.owned.get(slot) === record) this.owned.set(slot, next);
    }
  }

  /**
   * Takes again the slots an earlier instance of this lane owned and left entries of in its
   * segments (their records still name this lane, so that costs no fence), so that they are
   * materialized even if their keys see no more appends (docs/log.md, "Writer start").
   */
  private async adoptOwnSlots(): Promise<void> {
    await this.scanOwnLog();
    const slots = new Set<number>();
    for (const { slots: inSegment } of this.segments.values()) for (const slot of inSegment) slots.add(slot);
    const log = this.lane.log;
    for (const slot of slots) {
      if (this.owned.has(slot) || this.taking.has(slot)) continue;
      const record = await readSlotRecord(this.writer.store, this.writer.prefix, slot);
      if (record?.owner.writer !== log.writer || record.owner.lane !== log.lane) continue;
      const taking = this.take(slot).finally(() => this.taking.delete(slot));
      this.taking.set(slot, taking);
      await taking;
    }
  }

  /** An entry's records: from this lane's recent segments, else one ranged GET of its segment. */
  private async bodyOf(e: SlotEntry): Promise<Uint8Array> {
    const start = e.bodyStart + e.entry.bodyOffset;
    const end = start + e.entry.bodyBytes;
    const own = e.log.writer === this.lane.log.writer && e.log.lane === this.lane.log.lane;
    const kept = own ? this.recentSegments.get(e.seq) : undefined;
    if (kept) return kept.subarray(start, end);
    const key = new LogLayout(this.writer.prefix, e.log).segmentKey(e.seq);
    const read = await readRange(this.writer.store, key, start, end);
    if (!read) throw new StorageUnavailable(`log segment ${key} is gone before its entries were materialized`);
    return checkEntryBody(key, e.entry, read.body);
  }

  /**
   * Deletes this lane's segments that nothing needs (docs/log.md, "Deleting segments"): older
   * than log_retention_millis, every slot in them materialized past them at least
   * log_delete_delay_millis ago (or given up, its record no longer listing them), neither a
   * fence nor the log's newest segment. Returns how many were deleted.
   */
  async collectGarbage(): Promise<number> {
    const { store, prefix, config, logConfig } = this.writer;
    await this.scanOwnLog();
    const now = config.clock();
    // The log's real end: fences others wrote after this lane's last segment count too.
    const newest = await findLogEnd(store, this.lane.layout, this.lane.nextSeq - 1n);
    const gone: bigint[] = [];
    const records = new Map<number, SlotRecord | undefined>();
    const seqs = [...this.segments.keys()].sort((a, b) => (a < b ? -1 : 1));
    for (const seq of seqs) {
      const segment = this.segments.get(seq) as { createdMillis: bigint; slots: Set<number> };
      if (seq >= newest || segment.createdMillis > now - BigInt(logConfig.logRetentionMillis)) break;
      let needed = false;
      for (const slot of segment.slots) {
        const p = this.progress.get(slot);
        const materialized =
          p !== undefined && p.through >= seq && p.at <= now - BigInt(logConfig.logDeleteDelayMillis);
        if (this.owned.has(slot) && materialized) continue;
        // Owned but not materialized past it: needed, unless this lane lost the slot without
        // knowing yet (it learns from its next write): then, after long enough, the record tells.
        const suspectAfter = BigInt(logConfig.logRetentionMillis + 2 * logConfig.materializeIntervalMillis);
        if (this.owned.has(slot) && segment.createdMillis > now - suspectAfter) {
          needed = true;
          break;
        }
        if (!records.has(slot)) records.set(slot, await readSlotRecord(store, prefix, slot));
        const record = records.get(slot);
        const log = this.lane.log;
        const ownedHere = record !== undefined && record.owner.writer === log.writer && record.owner.lane === log.lane;
        // Another owner's now: needed while its record lists this log's range holding it.
        needed = ownedHere
          ? !materialized
          : record !== undefined &&
            rangesOf(record).some(
              (r) =>
                r.log.writer === log.writer &&
                r.log.lane === log.lane &&
                r.from <= seq &&
                (r.to === undefined || seq < r.to),
            );
        if (needed) break;
      }
      // Segments go in order: a later one is never deleted before an earlier one still needed.
      if (needed) break;
      gone.push(seq);
    }
    if (gone.length === 0) return 0;
    await store.delete(gone.map((seq) => this.lane.layout.segmentKey(seq)));
    for (const seq of gone) {
      this.segments.delete(seq);
      this.recentSegments.delete(seq);
    }
    return gone.length;
  }

  /** Learns the slots of this lane's segments written before this instance (their indexes). */
  private async scanOwnLog(): Promise<void> {
    const opened = this.lane.openFence;
    if (this.scannedBelow === opened) return;
    let from = 0n;
    for (;;) {
      const page = await listSegments(this.writer.store, this.lane.layout, from);
      for (const seq of page.seqs) {
        if (seq >= opened) break;
        const index = await readSegmentIndex(this.writer.store, this.lane.layout, seq);
        // Fences are kept (docs/log.md): a stale writer's next write must meet them.
        if (index.kind !== "data") continue;
        this.segments.set(seq, {
          createdMillis: index.createdMillis,
          slots: new Set(index.entries.map((e) => e.slot)),
        });
      }
      const last = page.seqs.at(-1);
      if (!page.truncated || last === undefined || last + 1n >= opened) break;
      from = last + 1n;
    }
    this.scannedBelow = opened;
  }

  private async ensureSlot(slot: number, layout: KeyLayout): Promise<void> {
    if (this.owned.has(slot)) return;
    await this.preparing.get(slot);
    if (this.owned.has(slot)) return;
    let taking = this.taking.get(slot);
    if (!taking) {
      taking = this.take(slot).finally(() => this.taking.delete(slot));
      this.taking.set(slot, taking);
    }
    // Other writers kept taking the slot first, or fenced it away at once: nothing is stored.
    if (!(await taking)) throw new Fenced(layout.keyspaceLayout.keyspace, layout.key, -1n);
  }

  /**
   * Creates the slot's first record if it has none, so that its first append costs nothing
   * (docs/log.md, "Keys of new slots"): one PUT, no LIST. A slot that has a record is left to
   * be taken on its first append, as the ring may give it to this writer only for now.
   */
  prepareNewSlot(slot: number): Promise<void> {
    if (this.owned.has(slot) || this.taking.has(slot) || this.preparing.has(slot)) return Promise.resolve();
    const { store, prefix } = this.writer;
    const first: SlotRecord = {
      slot,
      version: 0n,
      owner: { ...this.lane.log, since: this.lane.nextSeq },
      previous: [],
    };
    const preparing = createSlotRecord(store, prefix, first)
      .then((created) => {
        if (!created || this.owned.has(slot)) return;
        this.index.set(slot, (ks, key) => new KeyspaceLayout(prefix, ks).key(key).folder, []);
        this.index.markNew(slot);
        this.owned.set(slot, first);
      })
      .finally(() => this.preparing.delete(slot));
    this.preparing.set(slot, preparing);
    return preparing;
  }

  /** Takes a slot and reads its entries; false when it is another writer's after all. */
  private async take(slot: number): Promise<boolean> {
    const { store, prefix } = this.writer;
    const options = {
      store,
      prefix,
      by: this.lane.log,
      nextSeq: () => this.lane.nextSeq,
      clock: this.writer.config.clock,
    };
    const outcome = await takeSlots(options, [slot]);
    const record = outcome.taken[0];
    if (!record) return false;
    // A slot created now has no entries anywhere: none before its record, none of this lane's yet.
    const created = outcome.created.includes(slot);
    const entries = created ? [] : await slotEntries(store, prefix, slot, rangesOf(record));
    // A fence naming this version or a newer one came meanwhile: the slot is another's already.
    if ((this.fencedAt.get(slot) ?? -1n) >= record.version) return false;
    this.index.set(slot, (ks, key) => new KeyspaceLayout(prefix, ks).key(key).folder, entries);
    if (created) this.index.markNew(slot);
    this.owned.set(slot, record);
    return true;
  }

  /** Queues a call into the key's group for the next segment; starts the flush loop. */
  enqueue(
    where: { keyspace: string; key: string; folder: string; slot: number },
    insertions: readonly Insertion[],
    bytes: number,
  ): Promise<ItemOutcome[]> {
    let group = this.pending.get(where.folder);
    if (!group) {
      group = { ...where, insertions: [], waiters: [], bytes: 0 };
      this.pending.set(where.folder, group);
    }
    group.insertions.push(...insertions);
    group.bytes += bytes;
    this.pendingBytes += bytes;
    const outcome = new Promise<ItemOutcome[]>((resolve, reject) => {
      (group as Group).waiters.push({ count: insertions.length, resolve, reject });
    });
    this.kick();
    return outcome;
  }

  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private kick(): void {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
      // Calls queued while the loop was ending its last turn.
      if ((this.pending.size > 0 || this.pendingProgress.length > 0) && !this.writer.isStale) this.kick();
    });
  }

  private async run(): Promise<void> {
    const { logFlushIntervalMillis } = this.writer.logConfig;
    while (this.pending.size > 0 || this.unresolved || this.pendingProgress.length > 0) {
      if (this.unresolved) {
        // A segment's outcome is unknown: nothing is built on it until it is known.
        const plan = this.unresolved;
        let settled: LaneWrite | undefined;
        try {
          settled = await this.lane.resolve();
        } catch (err) {
          if (err instanceof LaneStale) return this.failEverything(err);
          this.failPending(err); // storage is still down; the next call tries again
          return;
        }
        this.unresolved = undefined;
        if (settled?.kind === "stored") this.applyStored(plan, settled.index, settled.body, false);
        if (settled?.kind === "fenced") this.giveUp(settled.fenced);
        continue;
      }
      if (logFlushIntervalMillis > 0 && this.pendingBytes < this.writer.logConfig.logSegmentMaxBytes) {
        await new Promise((resolve) => setTimeout(resolve, logFlushIntervalMillis));
      }
      const plan = this.build();
      if (plan.entries.length === 0 && plan.progress.length === 0) {
        // Every item a duplicate: nothing to store, the answers are known now (the commit they
        // repeat is an entry of some segment: watchers have it).
        plan.groups.forEach((group, i) => {
          this.answer(group, plan.outcomes[i] as ItemOutcome[]);
          this.release(group);
        });
        continue;
      }
      let written: LaneWrite;
      try {
        written = await this.lane.write({
          kind: "data",
          entries: plan.entries,
          progress: plan.progress.flatMap((p) => p.progress),
        });
      } catch (err) {
        if (err instanceof LaneStale) {
          for (const group of plan.groups) this.settle({ groups: [group] }, fencedError(group));
          for (const p of plan.progress) p.reject(err);
          return this.failEverything(err);
        }
        // Unknown outcome: the calls are told so (UNAVAILABLE: a retry with nonces is safe),
        // and the segment is written again before anything else.
        this.unresolved = plan;
        this.settle(plan, err);
        for (const p of plan.progress) p.reject(err);
        continue;
      }
      if (written.kind === "stored") {
        this.applyStored(plan, written.index, written.body, true);
        for (const p of plan.progress) p.resolve();
      } else {
        // Nothing was stored: calls of the slots kept go into the next segment, planned anew;
        // those of the slots given up are told (ABORTED: retry, at the slot's new owner).
        const lost = this.giveUp(written.fenced);
        for (const group of plan.groups.toReversed()) {
          if (lost.has(group.slot)) this.settle({ groups: [group] }, fencedError(group));
          else this.requeue(group);
        }
        // Progress of slots still owned is recorded in the next segment; of the others, dropped.
        for (const p of plan.progress) {
          const kept = p.progress.filter((x) => !lost.has(x.slot));
          if (kept.length > 0) this.pendingProgress.push({ ...p, progress: kept });
          else p.resolve();
        }
      }
    }
  }

  /** Takes the pending groups, up to a segment's worth, and plans each against its key's state. */
  private build(): Plan {
    const maxBytes = this.writer.logConfig.logSegmentMaxBytes;
    const groups: Group[] = [];
    let bytes = 0;
    for (const [folder, group] of this.pending) {
      if (groups.length > 0 && bytes + group.bytes > maxBytes) break;
      groups.push(group);
      bytes += group.bytes;
      this.pending.delete(folder);
    }
    this.pendingBytes -= bytes;
    const now = this.writer.config.clock();
    const plan: Plan = { groups, outcomes: [], tails: [], entries: [], progress: this.pendingProgress };
    this.pendingProgress = [];
    for (const group of groups) {
      const tail = this.tailOf(group) as KeyTail;
      const planned = planAppend(tail, group.insertions, now);
      plan.outcomes.push(planned.outcomes);
      if (!planned.objectName) {
        plan.tails.push(undefined);
        continue;
      }
      plan.tails.push(planned.tailAfter);
      plan.entries.push({
        slot: group.slot,
        keyspace: group.keyspace,
        key: group.key,
        name: planned.objectName,
        records: planned.records,
      });
    }
    return plan;
  }

  private tailOf(group: Group): KeyTail | undefined {
    return this.active.get(group.folder)?.tail;
  }

  /** A stored segment: key states move on, entries join the slots' index, calls are answered. */
  /** Bytes of this lane's recent segments kept for materialization. */
  get cachedBytes(): number {
    return this.recentSegments.calculatedSize;
  }

  private applyStored(plan: Plan, index: SegmentIndex, body: Uint8Array, answer: boolean): void {
    for (const e of index.entries) {
      this.writer.observer.committed?.(Number(e.name.lastOffset - e.name.firstOffset + 1n), e.bodyBytes);
    }
    this.segments.set(index.seq, {
      createdMillis: index.createdMillis,
      slots: new Set(index.entries.map((x) => x.slot)),
    });
    this.recentSegments.set(index.seq, body);
    let e = 0;
    plan.groups.forEach((group, i) => {
      const tail = plan.tails[i];
      if (tail) {
        const entry = index.entries[e++];
        if (entry && this.owned.has(group.slot)) {
          this.index.add(group.slot, group.folder, {
            log: this.lane.log,
            seq: index.seq,
            createdMillis: index.createdMillis,
            bodyStart: index.bodyStart,
            entry,
          });
        }
        const active = this.active.get(group.folder);
        if (active) active.tail = tail;
      }
      // Watchers read the entries themselves (log-changes.ts): nothing more to record.
      if (answer) this.answer(group, plan.outcomes[i] as ItemOutcome[]);
      this.release(group);
    });
  }

  private answer(group: Group, outcomes: ItemOutcome[]): void {
    let start = 0;
    for (const waiter of group.waiters) {
      waiter.resolve(outcomes.slice(start, start + waiter.count));
      start += waiter.count;
    }
  }

  /** Fails a plan's calls (they were told nothing else); their keys keep their states. */
  private settle(plan: Pick<Plan, "groups">, err: unknown): void {
    for (const group of plan.groups) {
      for (const waiter of group.waiters) waiter.reject(err);
      if (!this.unresolved?.groups.includes(group)) this.release(group);
    }
  }

  /** Puts a group back at the front of the next segment, ahead of its key's later calls. */
  private requeue(group: Group): void {
    const later = this.pending.get(group.folder);
    if (later) {
      group.insertions.push(...later.insertions);
      group.waiters.push(...later.waiters);
      group.bytes += later.bytes;
      this.pendingBytes -= later.bytes;
    }
    this.pending = new Map([[group.folder, group], ...[...this.pending].filter(([f]) => f !== group.folder)]);
    this.pendingBytes += group.bytes;
  }

  /** One call fewer on the key; an idle key's state moves to the bounded cache. */
  private release(group: Group): void {
    const active = this.active.get(group.folder);
    if (!active) return;
    active.calls -= group.waiters.length;
    if (active.calls <= 0) {
      this.active.delete(group.folder);
      if (this.owned.has(group.slot)) this.idleTails.set(group.folder, { tail: active.tail, slot: group.slot });
    }
  }

  /**
   * Slots a fence took, under a newer record version than this lane's: forgets them, their
   * entries, their keys' states, and fails their pending calls. Returns the slots lost.
   */
  private giveUp(fenced: readonly FencedSlot[]): Set<number> {
    const lost = new Set<number>();
    for (const { slot, recordVersion } of fenced) {
      if ((this.fencedAt.get(slot) ?? -1n) < recordVersion) this.fencedAt.set(slot, recordVersion);
      const record = this.owned.get(slot);
      if (record && record.version < recordVersion) {
        this.owned.delete(slot);
        this.index.drop(slot);
        lost.add(slot);
      }
    }
    if (lost.size === 0) return lost;
    for (const [folder, group] of this.pending) {
      if (!lost.has(group.slot)) continue;
      this.pending.delete(folder);
      this.pendingBytes -= group.bytes;
      this.settle({ groups: [group] }, fencedError(group));
    }
    for (const [folder, active] of this.active) if (lost.has(active.slot)) this.active.delete(folder);
    for (const [folder, idle] of this.idleTails.entries()) if (lost.has(idle.slot)) this.idleTails.delete(folder);
    return lost;
  }

  private failPending(err: unknown): void {
    const groups = [...this.pending.values()];
    this.pending.clear();
    this.pendingBytes = 0;
    this.settle({ groups }, err);
  }

  /** A newer instance of this writer took the log over: nothing pending was stored. */
  private failEverything(err: LaneStale): void {
    this.writer.markStale(err);
    for (const group of this.pending.values()) this.settle({ groups: [group] }, fencedError(group));
    this.pending.clear();
    this.pendingBytes = 0;
  }
}

function fencedError(group: Group): Fenced {
  return new Fenced(group.keyspace, group.key, -1n);
}
