// One log of a writer (a lane): dense segments written one at a time with If-None-Match
// (docs/log.md, "Writing: one PUT in flight per log" and "Fencing by sequence"). The lane
// knows its next sequence number; whoever else writes into it (a takeover fence, a newer
// instance of the same writer) takes that number first, and the lane learns it from its
// PUT's 412. A segment whose outcome is unknown (storage failed) blocks the lane until the
// same bytes are written again: segment n+1 is never built before n's fate is known, so a
// log never holds two entries planned from the same key state.

import { StorageUnavailable } from "../errors.ts";
import { LogLayout } from "../format/log-layout.ts";
import {
  decodeSegmentIndex,
  encodeSegment,
  type FencedSlot,
  type LogId,
  type SegmentIndex,
  type SegmentInput,
  segmentIndexEnd,
} from "../format/log-segment.ts";
import { createAgain, type ObjectStore, PreconditionFailed, readRange } from "../storage/object-store.ts";

/** A newer instance of this lane's writer has written into the log: this one must stop. */
export class LaneStale extends Error {
  readonly log: LogId;
  constructor(log: LogId, seq: bigint) {
    super(`log ${log.writer}/${log.lane} was taken over by a newer instance of its writer at segment ${seq}`);
    this.name = "LaneStale";
    this.log = log;
  }
}

/** What became of one segment write. */
export type LaneWrite =
  | { readonly kind: "stored"; readonly seq: bigint; readonly index: SegmentIndex; readonly body: Uint8Array }
  /** Others fenced the log first: these slots are given up, nothing of the segment stored. */
  | { readonly kind: "fenced"; readonly fenced: readonly FencedSlot[] };

/** The segments that exist from `from` on, in order: one LIST page (of `maxKeys`). */
export async function listSegments(
  store: ObjectStore,
  layout: LogLayout,
  from: bigint,
  maxKeys?: number,
): Promise<{ seqs: bigint[]; truncated: boolean }> {
  const page = await store.list(layout.folder, { startAfter: layout.startAfterForSeq(from), maxKeys });
  const seqs = page.objects.map((o) => layout.parseSegmentKey(o.key)).filter((s) => s !== undefined);
  return { seqs, truncated: page.truncated };
}

/**
 * The log's last sequence number at or after `from`, or `from - 1` when it has none there.
 * One LIST when fewer than a page follow `from`; past that, LIST probes of one name
 * (exponential, then bisecting), about 2·log2(n) of them, since "some segment at or after x
 * exists" holds for every x up to the end and for none beyond, holes or not.
 */
export async function findLogEnd(
  store: ObjectStore,
  layout: LogLayout,
  from: bigint,
  pageSize = 1000,
): Promise<bigint> {
  const first = await listSegments(store, layout, from, pageSize);
  let known = first.seqs.at(-1) ?? from - 1n;
  if (!first.truncated) return known;
  const firstAtOrAfter = async (x: bigint) => (await listSegments(store, layout, x, 1)).seqs[0];
  // Exponential: find a point beyond the end.
  let step = 1n;
  let beyond: bigint;
  for (;;) {
    const probe = known + step;
    const found = await firstAtOrAfter(probe);
    if (found === undefined) {
      beyond = probe;
      break;
    }
    known = found;
    step *= 2n;
  }
  // Bisect: segments exist at `known`, none at or after `beyond`.
  while (beyond - known > 1n) {
    const mid = known + (beyond - known) / 2n;
    const found = await firstAtOrAfter(mid);
    if (found === undefined) beyond = mid;
    else known = found;
  }
  return known;
}

/**
 * Bytes a segment's first ranged GET asks for: its header and, usually, its whole index (a
 * segment of a few thousand entries); a longer index costs a second GET.
 */
export const SEGMENT_HEAD_READ_BYTES = 64 * 1024;

/** Reads a segment's header and index: one ranged GET, two for a long index. */
export async function readSegmentIndex(store: ObjectStore, layout: LogLayout, seq: bigint): Promise<SegmentIndex> {
  const index = await readKeptSegmentIndex(store, layout, seq);
  if (!index) throw new StorageUnavailable(`log segment ${layout.segmentKey(seq)} was listed but is gone`);
  return index;
}

/** A segment's header and index; undefined when it is gone (deleted since it was listed). */
export async function readKeptSegmentIndex(
  store: ObjectStore,
  layout: LogLayout,
  seq: bigint,
): Promise<SegmentIndex | undefined> {
  const key = layout.segmentKey(seq);
  const head = await readRange(store, key, 0, SEGMENT_HEAD_READ_BYTES);
  if (!head) return undefined;
  const end = segmentIndexEnd(key, head.body);
  if (end <= head.body.byteLength) return decodeSegmentIndex(key, head.body);
  const rest = await readRange(store, key, head.body.byteLength, end);
  if (!rest) return undefined;
  return decodeSegmentIndex(key, Buffer.concat([head.body, rest.body]));
}

/**
 * Writes a fence into `target` at its next sequence number, from `from` on (docs/log.md):
 * every segment of it below the returned number exists and is read by the caller; its
 * writer's next PUT fails. Retries at the next number while others write first.
 */
export async function writeFence(
  store: ObjectStore,
  prefix: string,
  target: LogId,
  from: bigint,
  segment: Pick<SegmentInput, "kind" | "fenced" | "createdMillis">,
): Promise<bigint> {
  const layout = new LogLayout(prefix, target);
  let seq = (await findLogEnd(store, layout, from)) + 1n;
  for (;;) {
    const body = encodeSegment({ ...segment, seq, log: target });
    try {
      await store.put(layout.segmentKey(seq), body, { ifNoneMatch: true });
      return seq;
    } catch (err) {
      if (!(err instanceof PreconditionFailed)) throw err;
    }
    seq = (await findLogEnd(store, layout, seq)) + 1n;
  }
}

export interface LogLaneOptions {
  readonly store: ObjectStore;
  readonly prefix: string;
  readonly log: LogId;
  readonly clock: () => bigint;
}

export class LogLane {
  readonly layout: LogLayout;
  private readonly store: ObjectStore;
  private readonly prefix: string;
  private readonly clock: () => bigint;
  private next: bigint | undefined;
  /** The restart fence this instance wrote when it opened the lane. */
  private openedAt: bigint | undefined;
  /** A segment whose PUT failed without an answer: written again before anything else. */
  private unresolved: { seq: bigint; body: Uint8Array } | undefined;

  constructor(options: LogLaneOptions) {
    this.store = options.store;
    this.prefix = options.prefix;
    this.clock = options.clock;
    this.layout = new LogLayout(options.prefix, options.log);
  }

  get log(): LogId {
    return this.layout.log;
  }

  /** The sequence number the next segment will take. */
  get nextSeq(): bigint {
    if (this.next === undefined) throw new Error("the lane is not open");
    return this.next;
  }

  /** The restart fence this instance wrote: everything below it is an older instance's. */
  get openFence(): bigint {
    if (this.openedAt === undefined) throw new Error("the lane is not open");
    return this.openedAt;
  }

  /**
   * Opens the lane after any older instance of its writer: a restart fence right after the
   * log's end stops that instance's next write (docs/log.md, "Writer start").
   */
  async open(): Promise<bigint> {
    const fence = await writeFence(this.store, this.prefix, this.log, 0n, {
      kind: "restart-fence",
      createdMillis: this.clock(),
    });
    this.openedAt = fence;
    this.next = fence + 1n;
    return fence;
  }

  /**
   * Writes the next segment. `stored` when it is durable; `fenced` when takeover fences came
   * first (their slots are given up; the caller plans again, without them, and writes the
   * next segment); LaneStale when a newer instance of this writer wrote into the log. A
   * failure without an answer throws StorageUnavailable and leaves the segment unresolved:
   * `resolve()` must settle it before the next write.
   */
  async write(input: Omit<SegmentInput, "seq" | "log" | "createdMillis">): Promise<LaneWrite> {
    if (this.unresolved) throw new Error("a segment's outcome is unknown: resolve() it first");
    const seq = this.nextSeq;
    const body = encodeSegment({ ...input, seq, log: this.log, createdMillis: this.clock() });
    return this.put(seq, body);
  }

  /**
   * Settles a segment whose write failed without an answer by writing the same bytes again:
   * `stored` if they are there now (written then or now), `fenced` if another's segment took
   * the number. Undefined when nothing is unresolved.
   */
  async resolve(): Promise<LaneWrite | undefined> {
    const pending = this.unresolved;
    if (!pending) return undefined;
    this.unresolved = undefined;
    return this.put(pending.seq, pending.body, true);
  }

  get hasUnresolved(): boolean {
    return this.unresolved !== undefined;
  }

  private async put(seq: bigint, body: Uint8Array, again = false): Promise<LaneWrite> {
    const key = this.layout.segmentKey(seq);
    try {
      // PreconditionFailed means another object holds `seq`: a 412 met by the store's own
      // retry, or by writing an unresolved segment again, is read back first.
      if (again) await createAgain(this.store, key, body);
      else await this.store.put(key, body, { ifNoneMatch: true });
      this.next = seq + 1n;
      return { kind: "stored", seq, index: decodeSegmentIndex(key, body, body.byteLength), body };
    } catch (err) {
      if (!(err instanceof PreconditionFailed)) {
        this.unresolved = { seq, body };
        throw err;
      }
    }
    return this.readInterruption(seq);
  }

  /** Others wrote from `seq` on: what they say, and where this lane goes on. */
  private async readInterruption(seq: bigint): Promise<LaneWrite> {
    const end = await findLogEnd(this.store, this.layout, seq);
    const fenced: FencedSlot[] = [];
    for (let s = seq; s <= end; s++) {
      const index = await readSegmentIndex(this.store, this.layout, s).catch((err: unknown) => {
        // Deleted since it was listed: only data segments are ever deleted, and a data
        // segment here is a newer instance's.
        if (err instanceof StorageUnavailable) throw new LaneStale(this.log, s);
        throw err;
      });
      if (index.kind !== "takeover-fence") throw new LaneStale(this.log, s);
      fenced.push(...index.fenced);
    }
    this.next = end + 1n;
    return { kind: "fenced", fenced };
  }
}
