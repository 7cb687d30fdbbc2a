// The pages ReadStreams hold that the transport has not yet taken (read ahead, or written
// but still queued in grpc-js and HTTP/2 behind a client that does not read): two per
// stream, each of at most half of stream_buffer_bytes, and total_stream_buffer_bytes across
// the process. A stream reserves a page before reading it and gets it back when the
// transport has taken the page's messages, so a client that stops reading stops its
// stream's reads.

import { ResourceExhausted } from "@klstore/core";

/** One page being sent while the next is read: reads and sends overlap, and no more is held. */
export const PAGES_PER_STREAM = 2;

interface Waiter {
  readonly bytes: number;
  readonly grant: () => void;
}

/** The process-wide bound: reservations wait, first come first served, while it is used up. */
export class StreamBufferPool {
  readonly limit: number;
  /** Bytes reserved by streams right now. */
  used = 0;
  /** Reservations that had to wait for other streams' bytes, and new streams refused, for metrics. */
  waits = 0;
  refused = 0;
  private readonly waiters: Waiter[] = [];

  constructor(limit: number) {
    this.limit = limit;
  }

  /**
   * Resolves once `bytes` are reserved. An empty pool gives any amount, so a page larger
   * than the whole bound (one large value) is slow, never refused forever.
   */
  reserve(bytes: number, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (this.waiters.length === 0 && this.fits(bytes)) {
      this.used += bytes;
      return Promise.resolve();
    }
    this.waits++;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(signal.reason);
        this.grantWaiters(); // the next in line may fit where this one did not
      };
      const waiter: Waiter = {
        bytes,
        grant: () => {
          signal.removeEventListener("abort", onAbort);
          this.used += bytes;
          resolve();
        },
      };
      this.waiters.push(waiter);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Counts `bytes` at once, past the bound if need be (a page turned out larger than reserved). */
  take(bytes: number): void {
    this.used += bytes;
  }

  release(bytes: number): void {
    this.used -= bytes;
    this.grantWaiters();
  }

  /**
   * Refuses a new stream while the pool could not give it a page now: the bytes are held by
   * streams whose clients have not taken them, and it would only wait behind them.
   */
  admit(pageBytes: number): void {
    if (this.waiters.length === 0 && this.fits(pageBytes)) return;
    this.refused++;
    throw new ResourceExhausted(
      `reader stream buffers are full: ${this.used} bytes held by streams whose clients have not ` +
        `taken them (limit [reader] total_stream_buffer_bytes = ${this.limit}); retry later`,
    );
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.limit;
  }

  private grantWaiters(): void {
    for (let next = this.waiters[0]; next && this.fits(next.bytes); next = this.waiters[0]) {
      this.waiters.shift();
      next.grant();
    }
  }
}

/** One page a stream holds: its bytes in the pool, and its place among the stream's pages. */
export interface PageHold {
  /** The page turned out to hold `bytes` (read under a reservation of at most half the stream's bound). */
  resize(bytes: number): void;
  /** The transport took the page (or it will never be sent): its bytes and place go back. */
  release(): void;
  /** Whether it was released. */
  readonly released: boolean;
}

/**
 * One stream's pages: at most PAGES_PER_STREAM held, their bytes taken from the pool. Closing
 * gives back whatever is still held; releases after that (a write callback firing late)
 * change nothing.
 */
export class StreamBuffer {
  private readonly pool: StreamBufferPool;
  /** The call's: aborts when the client goes away. */
  private readonly callSignal: AbortSignal;
  private readonly stopped = new AbortController();
  /** Aborts reservations: the call's signal, or the stream ending. */
  private readonly reserving: AbortSignal;
  private readonly onRelease = new Set<() => void>();
  private readonly held = new Set<{ bytes: number }>();
  private closed = false;

  constructor(pool: StreamBufferPool, signal: AbortSignal) {
    this.pool = pool;
    this.callSignal = signal;
    this.reserving = this.stopped.signal;
    // The call going away ends waiting reservations as the stream ending does.
    signal.addEventListener("abort", () => this.stopReserving(), { once: true });
  }

  /** Pages this stream holds: more than one means its client has not taken the one before. */
  get pages(): number {
    return this.held.size;
  }

  /** Bytes this stream holds. */
  get bytes(): number {
    let bytes = 0;
    for (const page of this.held) bytes += page.bytes;
    return bytes;
  }

  /** Waits until the transport took this stream's older pages, then for `bytes` from the pool. */
  async reserve(bytes: number): Promise<PageHold> {
    while (this.held.size >= PAGES_PER_STREAM) await this.nextRelease(this.reserving);
    await this.pool.reserve(bytes, this.reserving);
    if (this.closed) {
      this.pool.release(bytes);
      throw new Error("the stream ended");
    }
    const page = { bytes };
    this.held.add(page);
    const held = this.held;
    return {
      get released() {
        return !held.has(page);
      },
      resize: (actual) => {
        if (!this.held.has(page)) return;
        if (actual > page.bytes) this.pool.take(actual - page.bytes);
        else this.pool.release(page.bytes - actual);
        page.bytes = actual;
      },
      release: () => {
        if (!this.held.delete(page)) return;
        this.pool.release(page.bytes);
        for (const wake of [...this.onRelease]) wake();
      },
    };
  }

  /**
   * Resolves true once `page` is released (or the client went away), false if `millis`
   * pass first (without `millis`, it waits as long as it takes).
   */
  whenReleased(page: PageHold, millis?: number): Promise<boolean> {
    if (page.released || this.callSignal.aborted) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const done = (released: boolean) => {
        clearTimeout(timer);
        this.onRelease.delete(wake);
        this.callSignal.removeEventListener("abort", onAbort);
        resolve(released);
      };
      const wake = () => {
        if (page.released) done(true);
      };
      const onAbort = () => done(true);
      const timer = millis === undefined ? undefined : setTimeout(() => done(false), millis);
      this.onRelease.add(wake);
      this.callSignal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Resolves once the transport took every page this stream holds, or the client went away. */
  async untilEmpty(): Promise<void> {
    while (this.held.size > 0 && !this.callSignal.aborted) await this.nextRelease(this.callSignal).catch(() => {});
  }

  /** Ends reservations still waiting (the stream is ending), keeping what is held. */
  stopReserving(): void {
    if (!this.stopped.signal.aborted) this.stopped.abort(new Error("the stream ended"));
  }

  /** Gives back whatever is still held; the stream reserves nothing more. */
  close(): void {
    this.stopReserving();
    this.closed = true;
    this.pool.release(this.bytes);
    this.held.clear();
  }

  private nextRelease(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const wake = () => {
        this.onRelease.delete(wake);
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        this.onRelease.delete(wake);
        reject(signal.reason);
      };
      this.onRelease.add(wake);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}
