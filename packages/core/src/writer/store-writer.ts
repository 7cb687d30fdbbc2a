// The direct writer (seed: StoreWriter): each append call commits one object durably before
// it returns. Calls for one key run one at a time in arrival order; keys run concurrently.
// Key state is cached (LRU) and recovered from storage on a miss or after being fenced.

import { LRUCache } from "lru-cache";
import { WRITER_DEFAULTS, type WriterConfig } from "../config.ts";
import { Fenced, KeyspaceAlreadyExists, KeyspaceNotFound } from "../errors.ts";
import { decodeKeyspaceConfig, encodeKeyspaceConfig, type KeyspaceSettings } from "../format/keyspace-config.ts";
import { type Compression, type KeyLayout, KeyspaceLayout } from "../format/layout.ts";
import { type ObjectStore, PreconditionFailed } from "../storage/object-store.ts";
import { InlineCodecPool, type RecordCodecPool } from "../workers/codec-pool.ts";
import { type Insertion, type ItemOutcome, planAppend, validateInsertions } from "./append-plan.ts";
import { compactKey } from "./compaction.ts";
import { commitBatch, recoverKeyState } from "./fencing.ts";
import { KeyQueue } from "./key-queue.ts";
import type { KeyState } from "./key-state.ts";

export interface StoreWriterOptions {
  readonly store: ObjectStore;
  /** Prefix of every object key (SPEC.md's object_prefix). */
  readonly prefix?: string;
  readonly config?: Partial<WriterConfig>;
  /** Where serialization and merges run; inline by default. */
  readonly codec?: RecordCodecPool;
}

export interface CreateKeyspaceOptions {
  readonly compression?: Compression;
}

const MAX_CACHED_KEYSPACES = 10_000;

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
  private readonly keyspaces = new LRUCache<string, KeyspaceSettings>({ max: MAX_CACHED_KEYSPACES });
  private readonly queue = new KeyQueue();

  constructor(options: StoreWriterOptions) {
    this.store = options.store;
    this.prefix = options.prefix ?? "";
    this.config = { ...WRITER_DEFAULTS, ...options.config };
    this.codec = options.codec ?? new InlineCodecPool();
    this.keys = new LRUCache({ max: this.config.maxCachedKeys });
  }

  async createKeyspace(keyspace: string, options: CreateKeyspaceOptions = {}): Promise<KeyspaceSettings> {
    const layout = new KeyspaceLayout(this.prefix, keyspace);
    const settings: KeyspaceSettings = {
      createdMillis: this.config.clock(),
      compression: options.compression ?? "none",
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

  async keyspaceSettings(keyspace: string): Promise<KeyspaceSettings> {
    const cached = this.keyspaces.get(keyspace);
    if (cached) return cached;
    const layout = new KeyspaceLayout(this.prefix, keyspace);
    const obj = await this.store.get(layout.configKey);
    if (!obj) throw new KeyspaceNotFound(keyspace);
    const settings = decodeKeyspaceConfig(layout.configKey, obj.body);
    this.keyspaces.set(keyspace, settings);
    return settings;
  }

  /** Appends to one key and returns, per insertion, its offset or that it was a duplicate. */
  async appendList(keyspace: string, key: string, insertions: readonly Insertion[]): Promise<ItemOutcome[]> {
    validateInsertions(insertions, this.config);
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
    options?: { readonly claimTag?: string },
  ): Promise<ItemOutcome[]> {
    const layout = new KeyspaceLayout(this.prefix, keyspace).key(key);
    const settings = await this.keyspaceSettings(keyspace);
    return this.queue.run(layout.folder, async () => {
      const state = await this.stateOf(layout);
      const plan = planAppend(state.tail, insertions, this.config.clock());
      if (!plan.objectName) return plan.outcomes;
      const body = await this.codec.encode(plan.records, "none");
      const name = { ...plan.objectName, sizeBytes: BigInt(body.byteLength), compression: "none" as const };
      const dataKey = layout.dataKey(name);
      try {
        await commitBatch(this.store, layout, state, dataKey, body, options?.claimTag);
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
      this.observer.committed?.(plan.records.length, body.byteLength);
      await this.compact(layout, committed, settings.compression);
      return plan.outcomes;
    });
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
  private async compact(layout: KeyLayout, state: KeyState, compression: Compression): Promise<void> {
    try {
      const after = await compactKey(this.store, layout, state, this.config, compression, this.codec);
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
