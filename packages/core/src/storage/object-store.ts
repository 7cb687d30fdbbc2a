// The small interface every storage backend implements. Object keys are plain strings; the
// layout (format/layout.ts) decides what they are. Backends are dumb: no klstore semantics.

export interface ListedObject {
  readonly key: string;
  readonly size: number;
}

export interface ListPage {
  readonly objects: ListedObject[];
  /** True when more objects match after the last one returned. */
  readonly truncated: boolean;
}

export interface ListOptions {
  /** Only keys strictly greater than this (byte order). */
  readonly startAfter?: string;
  /** At most this many objects (backends may cap it at 1000). */
  readonly maxKeys?: number;
}

export interface PutOptions {
  /** Create only: fail with PreconditionFailed if the key exists. */
  readonly ifNoneMatch?: boolean;
}

export interface StoredObject {
  readonly body: Uint8Array;
}

export interface ObjectStore {
  /** A human-readable description, e.g. the URL it was opened from. */
  readonly description: string;
  get(key: string): Promise<StoredObject | undefined>;
  /**
   * Bytes `start` up to `end` (exclusive; undefined: to the end) of an object, fewer when it
   * is shorter; undefined when it does not exist. Optional: `readRange` falls back to a GET.
   */
  getRange?(key: string, start: number, end?: number): Promise<StoredObject | undefined>;
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<void>;
  /** Deleting a missing key is not an error. */
  delete(keys: readonly string[]): Promise<void>;
  /** Keys beginning with `prefix`, in byte order, one page. */
  list(prefix: string, options?: ListOptions): Promise<ListPage>;
  /** Names of the immediate sub-folders of `prefix` (which ends with '/'), in byte order. */
  listFolders(prefix: string): Promise<string[]>;
  close(): Promise<void>;
}

/** Part of an object: one ranged GET where the backend has them, else the whole object sliced. */
export async function readRange(
  store: ObjectStore,
  key: string,
  start: number,
  end?: number,
): Promise<StoredObject | undefined> {
  if (store.getRange) return store.getRange(key, start, end);
  const whole = await store.get(key);
  return whole && { body: whole.body.subarray(start, end) };
}

/** A conditional put lost: the object already exists. */
export class PreconditionFailed extends Error {
  readonly key: string;

  constructor(key: string) {
    super(`object ${key} already exists`);
    this.key = key;
    this.name = "PreconditionFailed";
  }
}

/**
 * Creates `key` again after an earlier create of the same bytes failed without an answer:
 * a 412 then may be that attempt's own object, so the stored bytes decide (equal: created;
 * different: another's, PreconditionFailed). The S3 backend does the same for its own
 * retries within one PUT (docs/fencing.md, "Lost responses").
 */
export async function createAgain(store: ObjectStore, key: string, body: Uint8Array): Promise<void> {
  try {
    await store.put(key, body, { ifNoneMatch: true });
  } catch (err) {
    if (!(err instanceof PreconditionFailed)) throw err;
    const stored = await store.get(key);
    if (!stored || Buffer.compare(stored.body, body) !== 0) throw err;
  }
}

/** Counters of the storage work an operation cost (reported as page stats). */
export class StorageStats {
  listRequests = 0;
  getRequests = 0;
  putRequests = 0;
  deleteRequests = 0;
  bytesRead = 0;
  bytesWritten = 0;

  add(other: StorageStats): void {
    this.listRequests += other.listRequests;
    this.getRequests += other.getRequests;
    this.putRequests += other.putRequests;
    this.deleteRequests += other.deleteRequests;
    this.bytesRead += other.bytesRead;
    this.bytesWritten += other.bytesWritten;
  }
}

/** Wraps a store so every request is counted into `stats`. */
export function countingStore(store: ObjectStore, stats: StorageStats): ObjectStore {
  return {
    description: store.description,
    async get(key) {
      stats.getRequests++;
      const obj = await store.get(key);
      if (obj) stats.bytesRead += obj.body.byteLength;
      return obj;
    },
    ...(store.getRange && {
      async getRange(key: string, start: number, end?: number) {
        stats.getRequests++;
        const obj = await readRange(store, key, start, end);
        if (obj) stats.bytesRead += obj.body.byteLength;
        return obj;
      },
    }),
    async put(key, body, options) {
      stats.putRequests++;
      stats.bytesWritten += body.byteLength;
      return store.put(key, body, options);
    },
    async delete(keys) {
      stats.deleteRequests++;
      return store.delete(keys);
    },
    async list(prefix, options) {
      stats.listRequests++;
      return store.list(prefix, options);
    },
    async listFolders(prefix) {
      stats.listRequests++;
      return store.listFolders(prefix);
    },
    close: () => store.close(),
  };
}
