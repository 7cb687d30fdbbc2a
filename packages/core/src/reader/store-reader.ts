// The reader engine (seed: StoreReader): keyspace and key metadata, and pages forwards or
// backwards from the start, the end, an offset, a timestamp, a nonce or a continuation.
// Stateless: every call reads storage, and reports the storage work it cost.
//
// Correct while compaction runs: objects are read in offset order while tracking the next
// offset to return, so overlapping objects never yield an item twice, and an object deleted
// between LIST and GET makes the read look its position up again.

import { READER_DEFAULTS, type ReaderConfig } from "../config.ts";
import { InvalidArgument, KeyspaceNotFound, StorageUnavailable, Trimmed } from "../errors.ts";
import { decodeContinuation, encodeContinuation, type IterationOrder } from "../format/continuation.ts";
import { decodeDataObject } from "../format/data-object.ts";
import { decodeKeyspaceConfig, type KeyspaceSettings } from "../format/keyspace-config.ts";
import {
  I64_MAX,
  I64_MIN,
  type KeyLayout,
  KeyspaceLayout,
  timestampsOrdered,
  U64_MAX,
  U128_MAX,
} from "../format/layout.ts";
import type { DataObject } from "../format/object-chain.ts";
import type { Item } from "../format/records.ts";
import type { LogTail } from "../log/log-tail.ts";
import { withLogTail } from "../log/log-view.ts";
import { countingStore, type ObjectStore, StorageStats, type StoredObject } from "../storage/object-store.ts";
import { readTail } from "../writer/key-state.ts";
import { type Located, ObjectIndex, type ObjectPredicate, type Window, type WindowOrder } from "./object-index.ts";

export type { IterationOrder };

export interface ItemFilter {
  readonly startOffset?: bigint | undefined;
  /** ms since epoch */
  readonly startTimestamp?: bigint | undefined;
  readonly startNonce?: bigint | undefined;
}

export interface ReadPageRequest {
  readonly order?: IterationOrder;
  /** Most items in the page; the configured default_max_results when absent. */
  readonly maxSize?: number | undefined;
  /**
   * Most value bytes in the page, when fewer than the configured max_page_bytes (a stream
   * bounds what it holds per page); the first item is always taken, whatever its size.
   */
  readonly maxBytes?: number | undefined;
  readonly filter?: ItemFilter | undefined;
  readonly continuation?: string | undefined;
  /**
   * Carried from page to page by a reader of consecutive pages (a stream, the CLI): the
   * object the last page ended in is then fetched and decoded once, not once per page.
   */
  readonly recent?: RecentObject | undefined;
}

/**
 * The last data object a sequence of pages decoded, and the listing it was found in. A page
 * is usually smaller than an object (objects reach megabytes), so the next page starts in
 * the object this one ended in; without this, every page of a stream downloaded that whole
 * object again, and LISTed the key's folder again to find it. Objects never change under
 * their name, so a kept object is never stale, and the page being sent holds views of the
 * same body anyway: keeping it costs little memory. The listing can be stale: an object in
 * it may since have been compacted or trimmed away (its GET finds nothing, and the page
 * looks its position up again, as with a fresh listing), and objects committed since are
 * missing from its end (a page that reaches the end LISTs what follows instead of ending).
 */
export class RecentObject {
  private key: string | undefined;
  private items: Item[] = [];
  private window: Window | undefined;

  holds(key: string): boolean {
    return this.key === key;
  }

  itemsOf(key: string): Item[] | undefined {
    return this.key === key ? this.items : undefined;
  }

  keep(key: string, items: Item[]): void {
    this.key = key;
    this.items = items;
  }

  keepWindow(window: Window): void {
    this.window = window;
  }

  /**
   * Lets go of the kept object (its items are views of its whole body) but keeps the
   * listing: a stream whose client is behind holds no stored object while it waits, and its
   * next page GETs that object again (from the reader's cache, usually) without a LIST.
   */
  dropObject(): void {
    this.key = undefined;
    this.items = [];
  }

  /** The kept listing's object holding `offset`, if the listing has one. */
  holderOf(offset: bigint): Located | undefined {
    const objects = this.window?.objects ?? [];
    const index = objects.findIndex((o) => o.name.firstOffset <= offset && o.name.lastOffset >= offset);
    return this.window && index >= 0 ? { window: this.window, index } : undefined;
  }
}

export interface PageStats {
  readonly listRequests: number;
  readonly getRequests: number;
  readonly bytesRead: number;
}

export interface ItemList {
  readonly keyspace: string;
  readonly key: string;
  readonly items: Item[];
  /**
   * Present when more items may follow (the page is full, and forwards not known to end
   * the list): pass it back to read the next page.
   */
  readonly continuation?: string | undefined;
  readonly stats: PageStats;
}

export interface KeyMetadata {
  /** Offset of the oldest item still stored. */
  readonly firstOffset: bigint;
  /** Offset the next appended item will get. */
  readonly nextOffset: bigint;
  /** Lowest nonce the next append may carry without being dropped as a duplicate. */
  readonly nextNonce: bigint;
  readonly itemCount: bigint;
  readonly minTimestamp: bigint;
  readonly maxTimestamp: bigint;
}

export interface KeyspaceMetadata extends KeyspaceSettings {
  readonly keyspace: string;
}

export interface StoreReaderOptions {
  readonly store: ObjectStore;
  readonly prefix?: string;
  readonly config?: Partial<ReaderConfig>;
  /**
   * The shared log's tail (docs/log.md, "Reading"): keys are read from their per-key
   * objects and their entries in the logs. Without it, per-key objects alone.
   */
  readonly logTail?: LogTail;
}

/** Which items a read starts at: an object-level search and an item-level test. */
interface StartRule {
  readonly object: ObjectPredicate;
  readonly item: (item: Item) => boolean;
  readonly hint?: bigint;
  /** No filter and no continuation: a backward read starts at the newest object. */
  readonly unfiltered: boolean;
  /** The offset a continuation resumes at; a forward read must find it still stored. */
  readonly resumeAt?: bigint;
  /** What the object search may assume of the names (a timestamp search: their order). */
  readonly order?: WindowOrder;
}

/**
 * Whether objects' timestamp ranges follow one another along the key: each name ordered
 * (minTs <= maxTs) and starting no earlier than the one before ends. True of every key
 * klstore writes (it keeps a key's timestamps non-decreasing); a key the reference wrote
 * with timestamps out of order breaks it, and a timestamp search then scans names in order.
 */
const timestampsInOrder: WindowOrder = (objects) => {
  let before: bigint | undefined;
  for (const o of objects) {
    if (!timestampsOrdered(o.name) || (before !== undefined && o.name.minTimestamp < before)) return false;
    before = o.name.maxTimestamp;
  }
  return true;
};

export class StoreReader {
  readonly store: ObjectStore;
  readonly prefix: string;
  readonly config: ReaderConfig;

  private readonly logTail: LogTail | undefined;

  constructor(options: StoreReaderOptions) {
    this.store = options.store;
    this.prefix = options.prefix ?? "";
    this.config = { ...READER_DEFAULTS, ...options.config };
    this.logTail = options.logTail;
  }

  /** The store one read sees: per-key objects, and the log tail when there is one. */
  private keyView(store: ObjectStore): ObjectStore {
    return this.logTail ? withLogTail(store, this.prefix, this.logTail) : store;
  }

  async readKeyspaceMetadata(keyspace: string): Promise<KeyspaceMetadata> {
    const layout = new KeyspaceLayout(this.prefix, keyspace);
    const obj = await this.store.get(layout.configKey);
    if (!obj) throw new KeyspaceNotFound(keyspace);
    return { keyspace, ...decodeKeyspaceConfig(layout.configKey, obj.body) };
  }

  private async requireKeyspace(keyspace: string): Promise<void> {
    const layout = new KeyspaceLayout(this.prefix, keyspace);
    if (!(await this.store.get(layout.configKey))) throw new KeyspaceNotFound(keyspace);
  }

  /** Undefined when the key holds no items. Costs one GET and two LISTs. */
  async readKeyMetadata(keyspace: string, key: string): Promise<KeyMetadata | undefined> {
    const layout = new KeyspaceLayout(this.prefix, keyspace).key(key);
    const store = this.keyView(this.store);
    const tail = await readTail(store, layout);
    const newest = tail.chain.at(-1);
    if (!newest && tail.trimmed) {
      // Every item was trimmed: the list is empty, but it still starts and ends somewhere.
      const { firstOffset, nextNonce, lastTimestamp } = tail.trimmed;
      return {
        firstOffset,
        nextOffset: firstOffset,
        nextNonce,
        itemCount: 0n,
        minTimestamp: lastTimestamp,
        maxTimestamp: lastTimestamp,
      };
    }
    if (!newest) {
      await this.requireKeyspace(keyspace);
      return undefined;
    }
    // Objects that hold no items (an end marker, seals) may come first: a LIST of one name
    // could show only those.
    const located =
      tail.watermark === undefined
        ? undefined
        : await new ObjectIndex(store, layout, this.config.listPageSize).findFirst(() => true);
    const oldest = located ? located.window.objects[located.index] : tail.chain[0];
    const first = (oldest ?? newest).name;
    return {
      firstOffset: first.firstOffset,
      nextOffset: newest.name.lastOffset + 1n,
      nextNonce: newest.name.nextNonce,
      itemCount: newest.name.lastOffset + 1n - first.firstOffset,
      minTimestamp: first.minTimestamp,
      maxTimestamp: newest.name.maxTimestamp,
    };
  }

  async readPage(keyspace: string, key: string, request: ReadPageRequest = {}): Promise<ItemList> {
    const order = request.order ?? "forwards";
    if (order !== "forwards" && order !== "backwards")
      throw new InvalidArgument("order", `${String(order)} is not forwards or backwards`);
    const maxSize = request.maxSize ?? Math.min(this.config.defaultMaxResults, this.config.maxPageItems);
    this.checkPageSize(maxSize);
    if (request.maxBytes !== undefined && !(Number.isSafeInteger(request.maxBytes) && request.maxBytes >= 1)) {
      throw new InvalidArgument("max_bytes", `${request.maxBytes} is not a positive integer`);
    }
    const maxBytes = Math.min(this.config.maxPageBytes, request.maxBytes ?? this.config.maxPageBytes);
    validateFilter(request.filter);
    const layout = new KeyspaceLayout(this.prefix, keyspace).key(key);
    const stats = new StorageStats();
    const limits = { maxItems: maxSize, maxBytes };
    const store = this.keyView(countingStore(this.store, stats));
    const page = new PageRead(store, layout, this.config, limits, request.recent);
    const rule = startRule(layout, order, request);
    const { items, next } = order === "forwards" ? await page.forwards(rule) : await page.backwards(rule);
    // Only an empty answer pays for telling a missing keyspace from an empty key.
    if (items.length === 0) await this.requireKeyspace(keyspace);
    return {
      keyspace,
      key,
      items,
      continuation: next ? encodeContinuation(layout.folder, { order, ...next }) : undefined,
      stats: { listRequests: stats.listRequests, getRequests: stats.getRequests, bytesRead: stats.bytesRead },
    };
  }

  /** Refuses a page size outside 1..max_page_items, as readPage does (for callers that check first). */
  checkPageSize(maxSize: number): void {
    if (!Number.isSafeInteger(maxSize) || maxSize < 1 || maxSize > this.config.maxPageItems) {
      throw new InvalidArgument("max_size", `${maxSize} is outside 1..${this.config.maxPageItems}`);
    }
  }

  /**
   * A continuation that resumes a read right after `item` (forwards: at its offset + 1;
   * backwards: at its offset - 1), e.g. for a stream that delivered items one message at a
   * time. Undefined backwards after offset 0.
   */
  continuationAfter(keyspace: string, key: string, order: IterationOrder, itemOffset: bigint): string | undefined {
    const layout = new KeyspaceLayout(this.prefix, keyspace).key(key);
    const nextOffset = order === "forwards" ? itemOffset + 1n : itemOffset - 1n;
    if (nextOffset < 0n) return undefined;
    // The hint is only a starting guess: a wrong one costs a search, never a wrong item.
    return encodeContinuation(layout.folder, { order, nextOffset, hint: nextOffset });
  }
}

function validateFilter(filter: ItemFilter | undefined): void {
  if (!filter) return;
  const { startOffset, startTimestamp, startNonce } = filter;
  if (startOffset !== undefined && (startOffset < 0n || startOffset > U64_MAX))
    throw new InvalidArgument("filter.start_offset", "outside the unsigned 64-bit range");
  if (startTimestamp !== undefined && (startTimestamp < I64_MIN || startTimestamp > I64_MAX))
    throw new InvalidArgument("filter.start_timestamp", "outside the signed 64-bit range");
  if (startNonce !== undefined && (startNonce < 0n || startNonce > U128_MAX))
    throw new InvalidArgument("filter.start_nonce", "outside the unsigned 128-bit range");
}

function startRule(layout: KeyLayout, order: IterationOrder, request: ReadPageRequest): StartRule {
  if (request.continuation !== undefined) {
    const c = decodeContinuation(layout.folder, order, request.continuation);
    return order === "forwards"
      ? {
          object: (o) => o.name.lastOffset >= c.nextOffset,
          item: (i) => i.offset >= c.nextOffset,
          hint: c.hint,
          unfiltered: false,
          resumeAt: c.nextOffset,
        }
      : {
          object: (o) => o.name.firstOffset <= c.nextOffset,
          item: (i) => i.offset <= c.nextOffset,
          hint: c.hint,
          unfiltered: false,
          resumeAt: c.nextOffset,
        };
  }
  const f = request.filter ?? {};
  const objectTests: ObjectPredicate[] = [];
  const itemTests: ((i: Item) => boolean)[] = [];
  if (order === "forwards") {
    if (f.startOffset !== undefined) {
      const o = f.startOffset;
      objectTests.push((d) => d.name.lastOffset >= o);
      itemTests.push((i) => i.offset >= o);
    }
    if (f.startTimestamp !== undefined) {
      const t = f.startTimestamp;
      // An out-of-order name (minTs > maxTs) bounds nothing: it may hold any timestamp.
      objectTests.push((d) => d.name.maxTimestamp >= t || !timestampsOrdered(d.name));
      itemTests.push((i) => i.timestamp >= t);
    }
    if (f.startNonce !== undefined) {
      const n = f.startNonce;
      objectTests.push((d) => d.name.nextNonce > n);
      itemTests.push((i) => i.nonce !== undefined && i.nonce >= n);
    }
  } else {
    if (f.startOffset !== undefined) {
      const o = f.startOffset;
      objectTests.push((d) => d.name.firstOffset <= o);
      itemTests.push((i) => i.offset <= o);
    }
    if (f.startTimestamp !== undefined) {
      const t = f.startTimestamp;
      objectTests.push((d) => d.name.minTimestamp <= t || !timestampsOrdered(d.name));
      itemTests.push((i) => i.timestamp <= t);
    }
    if (f.startNonce !== undefined) {
      const n = f.startNonce;
      objectTests.push((d) => d.name.firstNonce <= n);
      itemTests.push((i) => i.nonce !== undefined && i.nonce <= n);
    }
  }
  return {
    object: (d) => objectTests.every((t) => t(d)),
    item: (i) => itemTests.every((t) => t(i)),
    unfiltered: objectTests.length === 0,
    ...(f.startTimestamp !== undefined ? { order: timestampsInOrder } : {}),
  };
}

/** A forward read resuming at an offset a trim removed is told so, instead of skipping ahead. */
function checkResumable(rule: StartRule, located: Located | undefined): void {
  const resumed = located?.window.objects[located.index];
  if (resumed && rule.resumeAt !== undefined && resumed.name.firstOffset > rule.resumeAt) {
    throw new Trimmed(rule.resumeAt, resumed.name.firstOffset);
  }
}

/** Objects fetched ahead of a forward page: enough to overlap download and decoding. */
const READ_AHEAD = 4;

/** The state of one page being read. */
/**
 * When a page is full: at `maxItems` items, or before its values would pass `maxBytes`
 * (the first item is always taken, so every page makes progress).
 */
class PageFill {
  private items = 0;
  private bytes = 0;
  full = false;
  private readonly maxItems: number;
  private readonly maxBytes: number;

  constructor(maxItems: number, maxBytes: number) {
    this.maxItems = maxItems;
    this.maxBytes = maxBytes;
  }

  /** Counts `item` into the page, or, when it does not fit, marks the page full. */
  takes(item: Item): boolean {
    const size = item.value.byteLength;
    if (this.items > 0 && this.bytes + size > this.maxBytes) {
      this.full = true;
      return false;
    }
    this.items++;
    this.bytes += size;
    if (this.items >= this.maxItems) this.full = true;
    return true;
  }
}

class PageRead {
  private readonly index: ObjectIndex;
  private upperBoundCache: bigint | undefined;
  private restarts = 0;
  /** GETs started ahead of need (by object key), so the next object downloads while this one decodes. */
  private readonly ahead = new Map<string, Promise<StoredObject | undefined>>();

  private readonly store: ObjectStore;
  private readonly layout: KeyLayout;
  private readonly config: ReaderConfig;
  private readonly maxSize: number;
  private readonly maxBytes: number;
  private readonly recent: RecentObject;

  constructor(
    store: ObjectStore,
    layout: KeyLayout,
    config: ReaderConfig,
    limits: { readonly maxItems: number; readonly maxBytes: number },
    recent?: RecentObject,
  ) {
    this.store = store;
    this.layout = layout;
    this.config = config;
    this.maxSize = limits.maxItems;
    this.maxBytes = limits.maxBytes;
    this.recent = recent ?? new RecentObject();
    this.index = new ObjectIndex(store, layout, config.listPageSize, () => this.upperBound());
  }

  /** The key's next offset, read only when a search needs it (two requests). */
  private async upperBound(): Promise<bigint> {
    if (this.upperBoundCache === undefined) {
      const tail = await readTail(this.store, this.layout);
      this.upperBoundCache = (tail.chain.at(-1)?.name.lastOffset ?? 0n) + 1n;
    }
    return this.upperBoundCache;
  }

  /**
   * Starts GETs of the objects from `objects[from]` on that the page is certain to need:
   * while the items they hold (from `nextOffset` on) do not yet fill `needed`. So no
   * prefetched object goes unused, and a page's request count does not change.
   */
  private readAhead(objects: readonly DataObject[], from: number, nextOffset: bigint, needed: number): void {
    let covered = 0;
    let next = nextOffset;
    for (let j = from; j < objects.length && j < from + READ_AHEAD && covered < needed; j++) {
      const o = objects[j] as DataObject;
      // An object wholly before the position (a compaction leftover) is skipped by the read too.
      if (o.name.lastOffset < next) continue;
      if (!this.ahead.has(o.key) && !this.recent.holds(o.key)) {
        const pending = this.store.get(o.key);
        pending.catch(() => {}); // awaited (and its error raised) by fetch, when reached
        this.ahead.set(o.key, pending);
      }
      covered += Number(o.name.lastOffset - (next > o.name.firstOffset ? next : o.name.firstOffset) + 1n);
      next = o.name.lastOffset + 1n;
    }
  }

  private async fetch(o: DataObject): Promise<Item[] | undefined> {
    const kept = this.recent.itemsOf(o.key);
    if (kept) return kept;
    const early = this.ahead.get(o.key);
    this.ahead.delete(o.key);
    const stored = await (early ?? this.store.get(o.key));
    if (!stored) {
      // Compacted away since it was listed: the caller looks its position up again.
      if (++this.restarts > this.config.maxCompactionRetries) {
        throw new StorageUnavailable(
          `key ${this.layout.folder} kept being compacted under the read (${this.restarts} restarts); retry`,
        );
      }
      return undefined;
    }
    const items = decodeDataObject(o.key, o.name, stored.body);
    this.recent.keep(o.key, items);
    return items;
  }

  async forwards(rule: StartRule): Promise<{ items: Item[]; next?: { nextOffset: bigint; hint: bigint } }> {
    const items: Item[] = [];
    let expected = -1n; // next offset to return, once the start is found
    // A stream's next page usually starts in an object of the listing its last page used.
    let located = rule.resumeAt !== undefined ? this.recent.holderOf(rule.resumeAt) : undefined;
    let kept = located !== undefined;
    located ??= await this.index.findFirst(rule.object, rule.hint, rule.order);
    if (located === undefined && rule.hint !== undefined) located = await this.index.findFirst(rule.object);
    checkResumable(rule, located);
    let window = located?.window;
    let i = located?.index ?? 0;
    let current: DataObject | undefined;
    const fill = new PageFill(this.maxSize, this.maxBytes);
    while (window && !fill.full) {
      if (i >= window.objects.length) {
        // A kept listing's end is not the key's end: objects may have been committed since.
        if (!window.truncated && !kept) break;
        window = await this.index.nextWindow(window);
        kept = false;
        i = 0;
        continue;
      }
      current = window.objects[i] as DataObject;
      if (current.name.lastOffset < expected) {
        i++;
        continue;
      }
      // A gap: a trim deleted what follows the items served so far. The page ends here, so
      // it never holds a gap; resuming from it reports the trim (Trimmed).
      if (expected >= 0n && current.name.firstOffset > expected) break;
      if (expected >= 0n) {
        // Past the start, items are contiguous: what this object holds is known from its name.
        const fromHere = Number(
          current.name.lastOffset - (expected > current.name.firstOffset ? expected : current.name.firstOffset) + 1n,
        );
        this.readAhead(
          window.objects as DataObject[],
          i + 1,
          current.name.lastOffset + 1n,
          this.maxSize - items.length - fromHere,
        );
      }
      const decoded = await this.fetch(current);
      if (!decoded) {
        const from = expected;
        const again =
          from >= 0n
            ? await this.index.findFirst((o) => o.name.lastOffset >= from)
            : await this.index.findFirst(rule.object, undefined, rule.order);
        if (from < 0n) checkResumable(rule, again);
        window = again?.window;
        kept = false;
        i = again?.index ?? 0;
        continue;
      }
      this.recent.keepWindow(window);
      for (const item of decoded) {
        if (item.offset < expected) continue;
        if (expected < 0n && !rule.item(item)) continue;
        if (!fill.takes(item)) break;
        items.push(item);
        expected = item.offset + 1n;
        if (fill.full) break;
      }
      i++;
    }
    const cutShort = current !== undefined && expected >= 0n && current.name.firstOffset > expected;
    if (cutShort) return { items, next: { nextOffset: expected, hint: (current as DataObject).name.firstOffset } };
    if (!fill.full || !current) return { items };
    // A page that took the last item of a complete, fresh listing ends the list (as of that
    // LIST): it carries no continuation, as a short last page does, rather than one whose
    // page would be empty. A kept listing may miss objects committed since.
    const endOfListing =
      window !== undefined &&
      !window.truncated &&
      !kept &&
      current.name.lastOffset < expected &&
      window.objects.slice(i).every((o) => o.name.lastOffset < expected);
    if (endOfListing) return { items };
    return { items, next: { nextOffset: expected, hint: current.name.firstOffset } };
  }

  async backwards(rule: StartRule): Promise<{ items: Item[]; next?: { nextOffset: bigint; hint: bigint } }> {
    const items: Item[] = [];
    let expected: bigint | undefined; // next offset to return (descending), once started
    let located: Located | undefined;
    if (rule.unfiltered) located = await this.newest();
    else {
      // As forwards: a stream's next page usually starts in its last page's listing.
      located = rule.resumeAt !== undefined ? this.recent.holderOf(rule.resumeAt) : undefined;
      located ??= await this.index.findLast(rule.object, rule.hint, rule.order);
    }
    if (!located && rule.hint !== undefined) located = await this.index.findLast(rule.object);
    let current: DataObject | undefined;
    const fill = new PageFill(this.maxSize, this.maxBytes);
    while (located && !fill.full) {
      const candidate = located.window.objects[located.index] as DataObject;
      // A gap below the items served: a trim is deleting the list's start. Items below a
      // gap are trimmed ones, so the list ends here for this read.
      if (expected !== undefined && candidate.name.lastOffset < expected) return { items };
      current = candidate;
      const decoded = await this.fetch(current);
      if (!decoded) {
        const from = expected ?? current.name.lastOffset;
        located = await this.index.findLast((o) => o.name.firstOffset <= from);
        continue;
      }
      this.recent.keepWindow(located.window);
      for (let k = decoded.length - 1; k >= 0; k--) {
        const item = decoded[k] as Item;
        if (expected !== undefined && item.offset > expected) continue;
        if (expected === undefined && !rule.item(item)) continue;
        if (!fill.takes(item)) break;
        items.push(item);
        expected = item.offset - 1n;
        if (fill.full) break;
      }
      if (fill.full) break;
      if (current.name.firstOffset === 0n) return { items };
      const before = current.name.firstOffset - 1n;
      located =
        located.index > 0
          ? { window: located.window, index: located.index - 1 }
          : await this.index.findLast((o) => o.name.firstOffset <= before, current.name.priorStartOffset);
    }
    if (!fill.full || !current || expected === undefined || expected < 0n) return { items };
    const hint = expected >= current.name.firstOffset ? current.name.firstOffset : current.name.priorStartOffset;
    return { items, next: { nextOffset: expected, hint } };
  }

  /** The newest object, found from the watermark: O(1) requests however long the key. */
  private async newest(): Promise<Located | undefined> {
    const tail = await readTail(this.store, this.layout);
    this.upperBoundCache = (tail.chain.at(-1)?.name.lastOffset ?? 0n) + 1n;
    if (tail.chain.length === 0) return undefined;
    return { window: { objects: tail.chain, truncated: false }, index: tail.chain.length - 1 };
  }
}
