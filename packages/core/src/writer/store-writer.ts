// The direct writer (seed: StoreWriter): each append call commits one object durably before
// it returns. Calls for one key run one at a time in arrival order; keys run concurrently.
// Key state is cached (LRU) and recovered from storage on a miss or after being fenced.

import { LRUCache } from "lru-cache";
import { ChangeLog, type KeyChange } from "../changes/change-log.ts";
import { WRITER_DEFAULTS, type WriterConfig } from "../config.ts";
import { Fenced, InvalidArgument, KeyspaceAlreadyExists, KeyspaceNotFound } from "../errors.ts";
import {
  decodeKeyspaceConfig,
  encodeKeyspaceConfig,
  type KeyspaceSettings,
  type Retention,
} from "../format/keyspace-config.ts";
import { type Compression, type KeyLayout, KeyspaceLayout, U64_MAX } from "../format/layout.ts";
import { parseListing, resolveChain } from "../format/object-chain.ts";
import { StoreReader } from "../reader/store-reader.ts";
import { type ObjectStore, PreconditionFailed } from "../storage/object-store.ts";
import { InlineCodecPool, type RecordCodecPool } from "../workers/codec-pool.ts";
import { type Insertion, type ItemOutcome, planAppend, validateInsertions } from "./append-plan.ts";
import { type CompactOptions, compactKey } from "./compaction.ts";
import { commitBatch, recoverKeyState } from "./fencing.ts";
import { KeyQueue } from "./key-queue.ts";
import type { KeyState } from "./key-state.ts";
import { type TrimOutcome, trimKey } from "./trim.ts";

export interface StoreWriterOptions {
  readonly store: ObjectStore;
  /** Prefix of every object key (docs/format.md's `{prefix}`). */
  readonly prefix?: string;
  readonly config?: Partial<WriterConfig>;
  /** Where serialization and merges run; inline by default. */
  readonly codec?: RecordCodecPool;
}

export interface CreateKeyspaceOptions {
  readonly compression?: Compression;
  readonly retention?: Retention | undefined;
}

export type { Retention, TrimOutcome };

function validateRetention(retention: Retention | undefined): Retention | undefined {
  if (!retention) return undefined;
  const { maxAgeMillis, maxItems } = retention;
  if (maxAgeMillis !== undefined && (maxAgeMillis < 1n || maxAgeMillis > U64_MAX)) {
    throw new InvalidArgument("retention.max_age_millis", `${maxAgeMillis} is outside 1..2^64-1`);
  }
  if (maxItems !== undefined && (maxItems < 1n || maxItems > U64_MAX)) {
    throw new InvalidArgument("retention.max_items", `${maxItems} is outside 1..2^64-1`);
  }
  return maxAgeMillis === undefined && maxItems === undefined ? undefined : { maxAgeMillis, maxItems };
}

const MAX_CACHED_KEYSPACES = 10_000;
const KEYSPACE_SETTINGS_TTL_MILLIS = 60_000;

export interface WriterObserver {
  /** A batch became durable as one object of `bytes` holding `items` new items. */
  committed?(items: number, bytes: number): void;
  /** A key's small objects were merged into a compacted one. */
  compacted?(): void;
}

export class StoreWriter {
  readonly store: ObjectStore;
  readonly prefix: string;
  readonly config: WriterConfig;
  /** Where batches are serialized and compactions merged. */
  readonly codec: RecordCodecPool;
  private readonly keys: LRUCache<string, KeyState>;
  /** Settings change rarely (retention); a minute-old copy is good enough for every use. */
  private readonly keyspaces = new LRUCache<string, KeyspaceSettings>({
    max: MAX_CACHED_KEYSPACES,
    ttl: KEYSPACE_SETTINGS_TTL_MILLIS,
  });
  private readonly queue = new KeyQueue();
  /** Bodies of uncompacted objects this writer stored, for compaction (docs/operations.md). */
  private readonly recentBodies: LRUCache<string, Uint8Array> | undefined;
  /** Every commit's change, for watchers (docs/watch.md). */
  readonly changes: ChangeLog;

  constructor(options: StoreWriterOptions) {
    this.store = options.store;
    this.prefix = options.prefix ?? "";
    this.config = { ...WRITER_DEFAULTS, ...options.config };
    this.codec = options.codec ?? new InlineCodecPool();
    this.keys = new LRUCache({ max: this.config.maxCachedKeys });
    if (this.config.compactionCacheBytes > 0) {
      this.recentBodies = new LRUCache({
        maxSize: this.config.compactionCacheBytes,
        sizeCalculation: (body) => Math.max(1, body.byteLength),
      });
    }
    this.changes = new ChangeLog(this.store, this.prefix, this.config.clock);
  }

  /** Bytes the compaction cache holds now (0 when it is off). */
  get compactionCacheBytes(): number {
    return this.recentBodies?.calculatedSize ?? 0;
  }

  async createKeyspace(keyspace: string, options: CreateKeyspaceOptions = {}): Promise<KeyspaceSettings> {
    const layout = new KeyspaceLayout(this.prefix, keyspace);
    const settings: KeyspaceSettings = {
      createdMillis: this.config.clock(),
      compression: options.compression ?? "none",
      retention: validateRetention(options.retention),
    };
    try {
      await this.store.put(layout.configKey, encodeKeyspaceConfig(settings), { ifNoneMatch: true });
    } catch (err) {
      if (err instanceof PreconditionFailed) throw new KeyspaceAlreadyExists(keyspace);
      throw err;
    }
    this.keyspaces.set(keyspace, settings);
    return settings;
  }

  /**
   * Replaces a keyspace's retention (undefined: keep everything). Last writer wins; other
   * writer processes pick it up when their cached settings expire.
   */
  async setRetention(keyspace: string, retention: Retention | undefined): Promise<KeyspaceSettings> {
    const checked = validateRetention(retention);
    const layout = new KeyspaceLayout(this.prefix, keyspace);
    const current = await this.readKeyspaceSettings(keyspace);
    const settings: KeyspaceSettings = { ...current, retention: checked };
    await this.store.put(layout.configKey, encodeKeyspaceConfig(settings));
    this.keyspaces.set(keyspace, settings);
    return settings;
  }

  async keyspaceSettings(keyspace: string): Promise<KeyspaceSettings> {
    return this.keyspaces.get(keyspace) ?? this.readKeyspaceSettings(keyspace);
  }

  /** The settings as stored, bypassing (and refreshing) the cache. */
  async readKeyspaceSettings(keyspace: string): Promise<KeyspaceSettings> {
    const layout = new KeyspaceLayout(this.prefix, keyspace);
    const obj = await this.store.get(layout.configKey);
    if (!obj) throw new KeyspaceNotFound(keyspace);
    const settings = decodeKeyspaceConfig(layout.configKey, obj.body);
    this.keyspaces.set(keyspace, settings);
    return settings;
  }

  /** Appends to one key and returns, per insertion, its offset or that it was a duplicate. */
  async appendList(keyspace: string, key: string, insertions: readonly Insertion[]): Promise<ItemOutcome[]> {
    validateInsertions(insertions, this.config, this.config.clock());
    return this.commitValidated(keyspace, key, insertions);
  }

  /**
   * Commits insertions already checked by validateInsertions as one object. The batching
   * writer validates each call on arrival and commits a group of calls through here, so
   * the group may hold more items than one call is allowed. `claimTag` is written into the
   * batch's claim (bulk import finds its batches by it after a crash).
   */
  async commitValidated(
    keyspace: string,
    key: string,
    insertions: readonly Insertion[],
    options?: {
      readonly claimTag?: string;
      /**
       * Called once the key is free for its next commit: the batch is stored (or failed) and
       * its change queued for the change log, whose PUT the returned promise still waits for.
       * A caller that commits a key's batches one after another starts the next one here,
       * so the change log's round trip is not on every commit's path.
       */
      readonly onKeyFree?: () => void;
      /** Leaves the watermark for a later commit of the key (compaction.ts, `holdWatermark`). */
      readonly holdWatermark?: boolean;
    },
  ): Promise<ItemOutcome[]> {
    // Called once: when the change is queued, or when the commit fails before that.
    let notify = options?.onKeyFree;
    const keyFree = () => {
      const f = notify;
      notify = undefined;
      f?.();
    };
    try {
      return await this.commitAndAnnounce(keyspace, key, insertions, options ?? {}, keyFree);
    } finally {
      keyFree();
    }
  }

  private async commitAndAnnounce(
    keyspace: string,
    key: string,
    insertions: readonly Insertion[],
    options: { readonly claimTag?: string; readonly holdWatermark?: boolean },
    keyFree: () => void,
  ): Promise<ItemOutcome[]> {
    const layout = new KeyspaceLayout(this.prefix, keyspace).key(key);
    const settings = await this.keyspaceSettings(keyspace);
    let change: KeyChange | undefined;
    const outcomes = await this.queue.run(layout.folder, async () => {
      const state = await this.stateOf(layout);
      const plan = planAppend(state.tail, insertions, this.config.clock());
      if (!plan.objectName) {
        // Every item is a duplicate: most likely a client retrying an append whose outcome it
        // never learned, perhaps from a writer that crashed after the commit and before its
        // change reached the change log. Announcing the tail again is what makes sure
        // watchers hear of that commit; streams drop the repeat (docs/watch.md).
        if (plan.outcomes.length > 0 && state.tail.nextOffset > 0n) {
          change = {
            key,
            nextOffset: state.tail.nextOffset,
            nextNonce: state.tail.nextNonce,
            commitMillis: this.config.clock(),
          };
        }
        return plan.outcomes;
      }
      const body = await this.codec.encode(plan.records, "none");
      const name = {
        ...plan.objectName,
        sizeBytes: BigInt(body.byteLength),
        compression: "none" as const,
        generation: state.claimGeneration,
      };
      const dataKey = layout.dataKey(name);
      try {
        await commitBatch(this.store, layout, state, dataKey, body, options.claimTag);
      } catch (err) {
        // Fenced, or unknown outcome (the claim may exist): storage is the truth from here.
        this.keys.delete(layout.folder);
        throw err;
      }
      const committed: KeyState = {
        ...state,
        tail: plan.tailAfter,
        claimGeneration: 0,
        uncompacted: [...state.uncompacted, { key: dataKey, name }],
      };
      this.keys.set(layout.folder, committed);
      this.recentBodies?.set(dataKey, body);
      this.observer.committed?.(plan.records.length, body.byteLength);
      change = {
        key,
        nextOffset: plan.tailAfter.nextOffset,
        nextNonce: plan.tailAfter.nextNonce,
        commitMillis: this.config.clock(),
      };
      await this.compact(layout, committed, settings.compression, { holdWatermark: options.holdWatermark });
      return plan.outcomes;
    });
    // Outside the key's queue: the key's next commit need not wait for the change log, and
    // the changes of commits finishing meanwhile share one PUT. Queued before the key is
    // free, so a key's changes reach the log in commit order.
    const announced = change && this.config.changeLog ? this.changes.record(keyspace, change) : undefined;
    keyFree();
    await announced;
    return outcomes;
  }

  /**
   * Trims a key so that `before` becomes its first available offset (docs/format.md, "Trim").
   * Runs in the key's queue, so it never interleaves with a commit or compaction of this
   * writer; offsets and nonces are never reused.
   */
  async trim(keyspace: string, key: string, before: bigint): Promise<TrimOutcome> {
    if (before < 0n || before > U64_MAX)
      throw new InvalidArgument("before_offset", "outside the unsigned 64-bit range");
    const layout = new KeyspaceLayout(this.prefix, keyspace).key(key);
    await this.keyspaceSettings(keyspace);
    return this.queue.run(layout.folder, async () => {
      const state = await this.stateOf(layout);
      try {
        const outcome = await trimKey(this.store, layout, state, before, this.codec);
        if (outcome.deletedObjects > 0) this.keys.delete(layout.folder); // its objects changed
        return outcome;
      } catch (err) {
        this.keys.delete(layout.folder);
        throw err;
      }
    });
  }

  /**
   * Applies the keyspace's retention to one key: trims below the newest max_items items and
   * below the first item younger than max_age. Undefined when nothing was due. Cheap when
   * nothing is due: one LIST of the key's oldest objects (plus the key's tail if not cached).
   */
  async applyRetention(keyspace: string, key: string): Promise<TrimOutcome | undefined> {
    const { retention } = await this.keyspaceSettings(keyspace);
    if (!retention) return undefined;
    const layout = new KeyspaceLayout(this.prefix, keyspace).key(key);
    // A few names, since sealed (empty) objects below the list's start are skipped.
    const listed = await this.store.list(layout.dataPrefix, { maxKeys: 16 });
    const first = resolveChain(parseListing(layout, listed.objects)).chain[0]?.name;
    if (!first) return undefined;
    const { nextOffset } = (await this.queue.run(layout.folder, () => this.stateOf(layout))).tail;
    let point = first.firstOffset;
    if (retention.maxItems !== undefined && nextOffset - retention.maxItems > point) {
      point = nextOffset - retention.maxItems;
    }
    if (retention.maxAgeMillis !== undefined) {
      const cutoff = this.config.clock() - retention.maxAgeMillis;
      if (first.minTimestamp < cutoff) {
        const reader = new StoreReader({ store: this.store, prefix: this.prefix });
        const page = await reader.readPage(keyspace, key, { maxSize: 1, filter: { startTimestamp: cutoff } });
        const youngest = page.items[0]?.offset ?? nextOffset;
        if (youngest > point) point = youngest;
      }
    }
    if (point <= first.firstOffset) return undefined;
    return this.trim(keyspace, key, point);
  }

  /**
   * The offset the key's next commit will claim, as this writer knows it (read from storage
   * on a cache miss, then cached for the commits that follow). Never more than the truth.
   */
  async nextOffset(keyspace: string, key: string): Promise<bigint> {
    const layout = new KeyspaceLayout(this.prefix, keyspace).key(key);
    return this.queue.run(layout.folder, async () => (await this.stateOf(layout)).tail.nextOffset);
  }

  /** The direct writer has nothing pending: every append is durable when it returns. */
  async flushKey(_keyspace: string, _key: string): Promise<void> {}
  async flushAll(): Promise<void> {}
  async dutyCycle(): Promise<void> {}

  /** Forgets a key's cached state; the next append re-reads it from storage. */
  invalidate(keyspace: string, key: string): void {
    this.keys.delete(new KeyspaceLayout(this.prefix, keyspace).key(key).folder);
  }

  async close(): Promise<void> {
    await this.queue.idle();
    await this.codec.close();
  }

  private async stateOf(layout: KeyLayout): Promise<KeyState> {
    const cached = this.keys.get(layout.folder);
    if (cached) return cached;
    const recovered = await recoverKeyState(this.store, layout);
    this.keys.set(layout.folder, recovered);
    return recovered;
  }

  /**
   * Compaction runs inside the key's queue, after the append is durable: a failure here
   * (say, another writer compacted first) loses nothing, so it only drops the cached state.
   */
  private async compact(
    layout: KeyLayout,
    state: KeyState,
    compression: Compression,
    options: CompactOptions = {},
  ): Promise<void> {
    try {
      const after = await compactKey(
        this.store,
        layout,
        state,
        this.config,
        compression,
        this.codec,
        this.recentBodies,
        options,
      );
      if (after !== state) {
        this.keys.set(layout.folder, after);
        this.observer.compacted?.();
      }
    } catch (err) {
      this.keys.delete(layout.folder);
      if (!(err instanceof PreconditionFailed || err instanceof Fenced)) this.onCompactionError(layout, err);
    }
  }

  /** Told about commits and compactions, for metrics. */
  observer: WriterObserver = {};

  /** Compaction errors do not fail the append that was already committed; they are reported here. */
  onCompactionError: (layout: KeyLayout, err: unknown) => void = (layout, err) => {
    process.emitWarning(`compaction of ${layout.folder} failed: ${(err as Error).message}`, "KlstoreCompactionWarning");
  };
}
