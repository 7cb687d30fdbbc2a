// The keyspace change log (docs/watch.md): every commit adds one change (key, next offset,
// next nonce, commit time) to its keyspace's log before the append is acknowledged, so a
// watcher never misses a change that a client saw succeed. Each writer instance writes its
// own sequence of change objects under {keyspace}/.changes/ (a folder no key can have: key
// segments escape a leading "."), one PUT in flight per keyspace: the changes of every
// commit finished meanwhile share the next PUT (group commit), so the log costs one PUT
// per round of commits, not one per commit, and nothing at all while nothing changes.
//
// An object is named t{time}_w{writer}_s{seq}; its time is taken when its PUT starts. A
// PUT that takes longer than WRITE_DEADLINE_MILLIS is done again under a new time with the
// same sequence number, so every object a watcher must see is durable within that
// deadline of its name's time: watchers rely on it (change-feed.ts).

import { randomBytes } from "node:crypto";
import { CorruptObject } from "../errors.ts";
import { KeyspaceLayout, U128_MAX } from "../format/layout.ts";
import type { ObjectStore } from "../storage/object-store.ts";

export interface KeyChange {
  readonly key: string;
  /** The key's next offset after the change. */
  readonly nextOffset: bigint;
  readonly nextNonce: bigint;
  /** ms since epoch, the writer's clock. */
  readonly commitMillis: bigint;
}

/** A change object must be durable within this long of its name's time. */
export const WRITE_DEADLINE_MILLIS = 5_000;
/** How far back watchers look again for objects still being written (> the deadline plus clock skew). */
export const LOOKBACK_MILLIS = 15_000;
/** Change objects older than this are deleted by the writers' sweep; older cursors are refused. */
export const CHANGE_LOG_RETENTION_MILLIS = 24 * 60 * 60 * 1000;

const TIME_DIGITS = 15;
const SEQ_DIGITS = 12;
/** The latest time an object name can hold (ms since the epoch). */
export const MAX_NAME_MILLIS = 10n ** BigInt(TIME_DIGITS) - 1n;
/** The highest sequence number an object name can hold. */
export const MAX_NAME_SEQ = 10 ** SEQ_DIGITS - 1;
const NAME = /^t(\d{15})_w([0-9a-f]{16})_s(\d{12})$/;

export interface ChangeObjectRef {
  readonly key: string;
  readonly millis: bigint;
  readonly writer: string;
  readonly seq: number;
}

export function changesFolder(prefix: string, keyspace: string): string {
  return `${new KeyspaceLayout(prefix, keyspace).keysFolder}.changes/`;
}

export function changeObjectKey(folder: string, millis: bigint, writer: string, seq: number): string {
  return `${folder}t${millis.toString().padStart(TIME_DIGITS, "0")}_w${writer}_s${String(seq).padStart(SEQ_DIGITS, "0")}`;
}

/** LIST start-after value whose results are the change objects named at or after `millis`. */
export function startAfterForMillis(folder: string, millis: bigint): string {
  return `${folder}t${(millis < 0n ? 0n : millis).toString().padStart(TIME_DIGITS, "0")}`;
}

export function parseChangeObjectKey(folder: string, key: string): ChangeObjectRef | undefined {
  const m = NAME.exec(key.slice(folder.length));
  if (!key.startsWith(folder) || !m) return undefined;
  return { key, millis: BigInt(m[1] as string), writer: m[2] as string, seq: Number(m[3]) };
}

export function encodeChanges(changes: readonly KeyChange[]): Uint8Array {
  const lines = changes.map((c) =>
    JSON.stringify({
      key: c.key,
      next_offset: c.nextOffset.toString(),
      next_nonce: c.nextNonce === U128_MAX ? undefined : c.nextNonce.toString(),
      commit_millis: c.commitMillis.toString(),
    }),
  );
  return Buffer.from(`${lines.join("\n")}\n`);
}

export function decodeChanges(objectKey: string, body: Uint8Array): KeyChange[] {
  const changes: KeyChange[] = [];
  for (const line of Buffer.from(body).toString("utf8").split("\n")) {
    if (line === "") continue;
    try {
      const o = JSON.parse(line) as Record<string, string>;
      if (typeof o.key !== "string") throw new TypeError("no key");
      changes.push({
        key: o.key,
        nextOffset: BigInt(o.next_offset as string),
        nextNonce: BigInt(o.next_nonce ?? "0"),
        commitMillis: BigInt(o.commit_millis as string),
      });
    } catch {
      // Damaged storage, not an outage: DATA_LOSS, which no client retries blindly.
      throw new CorruptObject(objectKey, `holds a line that does not parse: ${line.slice(0, 200)}`);
    }
  }
  return changes;
}

interface Pending {
  readonly changes: KeyChange[];
  readonly done: PromiseWithResolvers<void>;
}

function settled(): PromiseWithResolvers<void> {
  const done = Promise.withResolvers<void>();
  done.promise.catch(() => {}); // carried-over changes may have no waiter left
  return done;
}

/** One keyspace's sequence of change objects from this writer instance. */
class KeyspaceLog {
  private seq = 0;
  private lastMillis = 0n;
  private pending: Pending | undefined;
  private writing = false;
  private readonly store: ObjectStore;
  private readonly folder: string;
  private readonly writer: string;
  private readonly clock: () => bigint;

  constructor(store: ObjectStore, folder: string, writer: string, clock: () => bigint) {
    this.store = store;
    this.folder = folder;
    this.writer = writer;
    this.clock = clock;
  }

  record(change: KeyChange): Promise<void> {
    this.pending ??= { changes: [], done: settled() };
    this.pending.changes.push(change);
    const done = this.pending.done.promise;
    void this.drain();
    return done;
  }

  private async drain(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (this.pending) {
        const batch = this.pending;
        this.pending = undefined;
        try {
          await this.write(batch.changes);
          batch.done.resolve();
        } catch (err) {
          // The changes stay due: they go out with the next PUT, so none is ever dropped
          // while this process lives; the appends waiting on them see the failure.
          const later = this.pending as Pending | undefined; // records made during the PUT
          this.pending = later
            ? { changes: [...batch.changes, ...later.changes], done: later.done }
            : { changes: batch.changes, done: settled() };
          batch.done.reject(err);
          throw err;
        }
      }
    } catch {
      // reported to the waiting appends
    } finally {
      this.writing = false;
    }
  }

  private async write(changes: readonly KeyChange[]): Promise<void> {
    const body = encodeChanges(changes);
    const seq = this.seq++;
    for (;;) {
      // Names are strictly increasing in time per writer, even if the clock steps back.
      const now = this.clock();
      const millis = now > this.lastMillis ? now : this.lastMillis + 1n;
      this.lastMillis = millis;
      await this.store.put(changeObjectKey(this.folder, millis, this.writer, seq), body);
      if (this.clock() - millis <= BigInt(WRITE_DEADLINE_MILLIS)) return;
      // Too late for watchers that already looked past `millis`: write it again, newer.
    }
  }
}

/** The change logs of one writer instance, one per keyspace it commits to. */
export class ChangeLog {
  /** This instance's name in object names: random, so two instances never collide. */
  readonly writer = randomBytes(8).toString("hex");
  private readonly logs = new Map<string, KeyspaceLog>();
  private readonly store: ObjectStore;
  private readonly prefix: string;
  private readonly clock: () => bigint;

  constructor(store: ObjectStore, prefix: string, clock: () => bigint) {
    this.store = store;
    this.prefix = prefix;
    this.clock = clock;
  }

  /** Resolves once the change is durable in the keyspace's log. */
  record(keyspace: string, change: KeyChange): Promise<void> {
    let log = this.logs.get(keyspace);
    if (!log) {
      log = new KeyspaceLog(this.store, changesFolder(this.prefix, keyspace), this.writer, this.clock);
      this.logs.set(keyspace, log);
    }
    return log.record(change);
  }
}
