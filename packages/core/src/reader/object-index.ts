// Searches a key's data objects through LIST alone: object names are the index. A LIST
// returns up to list_page_size names starting at any first offset, so a search is a binary
// search over the offset space whose probes each reveal a window of objects; a key of up
// to list_page_size objects is searched with one LIST, a larger one in O(log n) LISTs.

import type { KeyLayout } from "../format/layout.ts";
import { type DataObject, parseListing, resolveChain } from "../format/object-chain.ts";
import type { ObjectStore } from "../storage/object-store.ts";

export type ObjectPredicate = (o: DataObject) => boolean;

/**
 * Whether a window's objects, in offset order, keep what bisection assumes of a predicate
 * (that it changes value once along the key). Objects a search lists that break it make
 * the search scan the key's names in order instead: exact, at one LIST per window.
 */
export type WindowOrder = (objects: readonly DataObject[]) => boolean;

export interface Window {
  /** Chain-resolved objects with first offset >= the window's start, ascending. */
  readonly objects: DataObject[];
  /** More objects follow the last one. */
  readonly truncated: boolean;
}

export interface Located {
  readonly window: Window;
  readonly index: number;
}

export class ObjectIndex {
  private readonly store: ObjectStore;
  private readonly layout: KeyLayout;
  private readonly listPageSize: number;
  /** The key's next offset; asked for only when a search must bisect (it costs requests). */
  private readonly upperBound: () => Promise<bigint>;

  constructor(
    store: ObjectStore,
    layout: KeyLayout,
    listPageSize: number,
    upperBound: () => Promise<bigint> = async () => (1n << 64n) - 1n,
  ) {
    this.store = store;
    this.layout = layout;
    this.listPageSize = listPageSize;
    this.upperBound = upperBound;
  }

  /** One LIST: objects whose first offset is >= `fromOffset`. */
  async windowFrom(fromOffset: bigint): Promise<Window> {
    return this.windowAfterKey(this.layout.startAfterForFirstOffset(fromOffset));
  }

  /** The window that continues after `window` (which must be truncated). */
  async nextWindow(window: Window): Promise<Window> {
    const last = window.objects.at(-1);
    if (!last) return { objects: [], truncated: false };
    return this.windowAfterKey(last.key, last.name.lastOffset);
  }

  private async windowAfterKey(startAfter: string, coveredTo = -1n): Promise<Window> {
    let after = startAfter;
    for (;;) {
      const page = await this.store.list(this.layout.dataPrefix, { startAfter: after, maxKeys: this.listPageSize });
      const { chain } = resolveChain(parseListing(this.layout, page.objects));
      const objects = chain.filter((o) => o.name.lastOffset > coveredTo);
      const last = page.objects.at(-1);
      // A page of objects covered already (leftovers under a wider object, a log entry its
      // materialized object holds) says nothing of what follows: look past it, or the window
      // would be empty yet truncated, and a read would end there.
      if (objects.length > 0 || !page.truncated || !last) return { objects, truncated: page.truncated };
      after = last.key;
    }
  }

  /**
   * The first object for which `pred` holds, where `pred` is monotone along the list
   * (false...false true...true). `hint` is a first offset believed to be at or before the
   * answer (a continuation's object): an object starting exactly there that holds is the
   * answer; one that does not starts a forward scan. With `order`, `pred` need not be
   * monotone where the listed objects break `order`: then the answer is the first object
   * in offset order for which it holds, found by a scan.
   */
  async findFirst(pred: ObjectPredicate, hint?: bigint, order?: WindowOrder): Promise<Located | undefined> {
    if (hint !== undefined) {
      const w = await this.windowFrom(hint);
      const head = w.objects[0];
      if (head && !pred(head)) return this.scanForward(w, pred);
      if (head && head.name.firstOffset === hint) return { window: w, index: 0 };
    }
    const w = await this.windowFrom(0n);
    const index = w.objects.findIndex(pred);
    if (index >= 0) return { window: w, index };
    if (!w.truncated) return undefined;
    if (!order) return this.bisectFirst(pred, w);
    // No object of the first window holds: the answer, wherever it is, comes after it.
    if (!order(w.objects)) return this.scanForward(await this.nextWindow(w), pred);
    const disorder = { seen: false };
    const found = await this.bisectFirst(pred, w, (objects) => {
      if (!order(objects)) disorder.seen = true;
    });
    return disorder.seen ? this.scanForward(await this.nextWindow(w), pred) : found;
  }

  /**
   * findFirst past the first window `w` (truncated, no object of it holding), by bisection;
   * `seen` is shown every window the bisection lists.
   */
  private async bisectFirst(
    pred: ObjectPredicate,
    w: Window,
    seen: (objects: readonly DataObject[]) => void = () => {},
  ): Promise<Located | undefined> {
    // Invariants: every object starting before `lo` is false; the first object starting
    // at or after `hi` is true (or there is none), and `hiWindow` starts with it.
    let lo = (w.objects.at(-1) as DataObject).name.firstOffset + 1n;
    let hi = (await this.upperBound()) + 1n;
    let hiWindow: Window | undefined;
    while (lo < hi) {
      const mid = lo + (hi - lo) / 2n;
      let probe = await this.windowFrom(mid);
      seen(probe.objects);
      let head = probe.objects[0];
      if (head && pred(head)) {
        hi = mid;
        hiWindow = probe;
        // Bisecting offsets alone would take log2(object size) more probes to rule out
        // the object holding `mid`; the head's name says where that object starts.
        const holder = await this.holderOf(head, lo, mid);
        if (!holder) continue;
        seen(holder.objects);
        if (pred(holder.objects[0] as DataObject)) {
          hi = (holder.objects[0] as DataObject).name.firstOffset;
          hiWindow = holder;
          continue;
        }
        probe = holder;
        head = holder.objects[0];
      }
      if (!head) {
        hi = mid;
        hiWindow = probe;
        continue;
      }
      const i = probe.objects.findIndex(pred);
      if (i > 0) return { window: probe, index: i };
      if (!probe.truncated) return undefined;
      lo = (probe.objects.at(-1) as DataObject).name.firstOffset + 1n;
    }
    const answer = hiWindow ?? (await this.windowFrom(lo));
    seen(answer.objects);
    return answer.objects[0] && pred(answer.objects[0]) ? { window: answer, index: 0 } : undefined;
  }

  /**
   * The last object for which `pred` holds, where `pred` is true...true false...false. With
   * `order`, as in findFirst: where the listed objects break it, the last object in offset
   * order for which `pred` holds, found by a scan of every window.
   */
  async findLast(pred: ObjectPredicate, hint?: bigint, order?: WindowOrder): Promise<Located | undefined> {
    if (hint !== undefined) {
      const w = await this.windowFrom(hint);
      const head = w.objects[0];
      if (head && pred(head)) return this.scanLast(w, pred);
    }
    const w = await this.windowFrom(0n);
    if (!order) return this.bisectLast(pred, w);
    if (!order(w.objects)) return this.scanAllLast(w, pred);
    const disorder = { seen: false };
    const found = await this.bisectLast(pred, w, (objects) => {
      if (!order(objects)) disorder.seen = true;
    });
    return disorder.seen ? this.scanAllLast(w, pred) : found;
  }

  /** findLast from the first window `w`, by bisection; `seen` is shown every window listed after it. */
  private async bisectLast(
    pred: ObjectPredicate,
    w: Window,
    seen: (objects: readonly DataObject[]) => void = () => {},
  ): Promise<Located | undefined> {
    // Invariants: `best` is the last object starting before `lo`, and it is true; the first
    // object starting at or after `hi` is false (or there is none).
    const index = w.objects.findIndex((o) => !pred(o));
    if (index > 0) return { window: w, index: index - 1 };
    if (index === 0) return undefined;
    let best = this.lastOf(w);
    if (!w.truncated || !best) return best;
    let lo = (w.objects.at(-1) as DataObject).name.firstOffset + 1n;
    let hi = (await this.upperBound()) + 1n;
    while (lo < hi) {
      const mid = lo + (hi - lo) / 2n;
      let probe = await this.windowFrom(mid);
      seen(probe.objects);
      let head = probe.objects[0];
      if (head && !pred(head)) {
        hi = mid;
        // As in findFirst: look at the object holding `mid` instead of bisecting it.
        const holder = await this.holderOf(head, lo, mid);
        if (!holder) continue;
        seen(holder.objects);
        if (!pred(holder.objects[0] as DataObject)) {
          hi = (holder.objects[0] as DataObject).name.firstOffset;
          continue;
        }
        probe = holder;
        head = holder.objects[0];
      }
      if (!head) {
        hi = mid;
        continue;
      }
      const i = probe.objects.findIndex((o) => !pred(o));
      if (i > 0) return { window: probe, index: i - 1 };
      best = this.lastOf(probe);
      if (!probe.truncated) return best;
      lo = (probe.objects.at(-1) as DataObject).name.firstOffset + 1n;
    }
    return best;
  }

  /**
   * The window starting at the object that holds offset `mid`, found through the prior
   * start offset in the name of `next` (the first object starting after `mid`). Looked up
   * only when that object spans at least half of [lo, mid): then the probe halves the
   * range at least as well as bisecting would, and often ends the search. Undefined when
   * not worth it, or when the pointer is stale (its object was merged into another).
   */
  private async holderOf(next: DataObject, lo: bigint, mid: bigint): Promise<Window | undefined> {
    const prior = next.name.priorStartOffset;
    if (prior < lo || prior >= mid || prior >= next.name.firstOffset) return undefined;
    if (prior - lo > (mid - lo) / 2n) return undefined;
    const w = await this.windowFrom(prior);
    return w.objects[0]?.name.firstOffset === prior ? w : undefined;
  }

  /** The first object satisfying pred in `w` or the windows after it. */
  private async scanForward(w: Window, pred: ObjectPredicate): Promise<Located | undefined> {
    let window = w;
    for (;;) {
      const index = window.objects.findIndex(pred);
      if (index >= 0) return { window, index };
      if (!window.truncated) return undefined;
      window = await this.nextWindow(window);
    }
  }

  /** The last object satisfying a true...false pred, from `w` onwards. */
  private async scanLast(w: Window, pred: ObjectPredicate): Promise<Located | undefined> {
    let window = w;
    let best: Located | undefined;
    for (;;) {
      for (let i = 0; i < window.objects.length; i++) {
        if (pred(window.objects[i] as DataObject)) best = { window, index: i };
        else return best;
      }
      if (!window.truncated) return best;
      window = await this.nextWindow(window);
    }
  }

  /** The last object satisfying pred in `w` or any window after it, whatever pred's shape. */
  private async scanAllLast(w: Window, pred: ObjectPredicate): Promise<Located | undefined> {
    let window = w;
    let best: Located | undefined;
    for (;;) {
      for (let i = window.objects.length - 1; i >= 0; i--) {
        if (pred(window.objects[i] as DataObject)) {
          best = { window, index: i };
          break;
        }
      }
      if (!window.truncated) return best;
      window = await this.nextWindow(window);
    }
  }

  private lastOf(w: Window): Located | undefined {
    return w.objects.length > 0 ? { window: w, index: w.objects.length - 1 } : undefined;
  }
}
