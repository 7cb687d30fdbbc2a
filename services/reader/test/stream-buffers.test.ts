import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PAGES_PER_STREAM, StreamBuffer, StreamBufferPool } from "../src/stream-buffers.ts";

/** Whether `promise` has settled once pending callbacks ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe("the process's stream buffer pool", () => {
  it("gives bytes within its limit at once and makes the rest wait, first come first served", async () => {
    const pool = new StreamBufferPool(100);
    const signal = new AbortController().signal;
    await pool.reserve(60, signal);
    await pool.reserve(40, signal);
    const big = pool.reserve(50, signal);
    const small = pool.reserve(10, signal);
    assert.equal(await settled(big), false);
    assert.equal(await settled(small), false, "a later small reservation does not overtake");
    assert.equal(pool.waits, 2);
    pool.release(40);
    assert.equal(await settled(big), false, "60 + 50 would pass 100");
    assert.equal(await settled(small), false, "a later small reservation still does not overtake");
    pool.release(60);
    assert.equal(await settled(big), true);
    assert.equal(await settled(small), true);
    assert.equal(pool.used, 60);
  });

  it("gives an empty pool's whole bound and more to one reservation, so a large page is never refused forever", async () => {
    const pool = new StreamBufferPool(100);
    await pool.reserve(250, new AbortController().signal);
    assert.equal(pool.used, 250);
  });

  it("drops an aborted reservation from the line and serves the next", async () => {
    const pool = new StreamBufferPool(100);
    const signal = new AbortController().signal;
    await pool.reserve(90, signal);
    const gone = new AbortController();
    const first = pool.reserve(50, gone.signal);
    const second = pool.reserve(10, signal);
    gone.abort(new Error("client went away"));
    await assert.rejects(first, /client went away/);
    assert.equal(await settled(second), true);
    assert.equal(pool.used, 100);
  });

  it("refuses a new stream, naming total_stream_buffer_bytes, while a page would not fit or others wait", async () => {
    const pool = new StreamBufferPool(100);
    const signal = new AbortController().signal;
    pool.admit(50);
    await pool.reserve(60, signal);
    assert.throws(() => pool.admit(50), {
      code: "RESOURCE_EXHAUSTED",
      retryable: true,
      message: /60 bytes held .*\[reader\] total_stream_buffer_bytes = 100/,
    });
    pool.admit(40);
    const waiting = pool.reserve(50, signal);
    assert.throws(() => pool.admit(1), /total_stream_buffer_bytes/);
    assert.equal(pool.refused, 2);
    pool.release(60);
    await waiting;
  });
});

describe("one stream's buffer", () => {
  it(`holds at most ${PAGES_PER_STREAM} pages, reserving the next once the transport took one`, async () => {
    const pool = new StreamBufferPool(1000);
    const stream = new StreamBuffer(pool, new AbortController().signal);
    const first = await stream.reserve(100);
    await stream.reserve(100);
    const third = stream.reserve(100);
    assert.equal(await settled(third), false);
    first.release();
    first.release(); // a second release changes nothing
    assert.equal(await settled(third), true);
    assert.equal(stream.bytes, 200);
    assert.equal(pool.used, 200);
  });

  it("counts what a page turned out to hold, above or below its reservation", async () => {
    const pool = new StreamBufferPool(1000);
    const stream = new StreamBuffer(pool, new AbortController().signal);
    const smaller = await stream.reserve(100);
    smaller.resize(30);
    const larger = await stream.reserve(100);
    larger.resize(1500); // one value larger than a page
    assert.equal(pool.used, 1530);
    larger.release();
    assert.equal(pool.used, 30);
  });

  it("waits until the transport took every page, or the client went away", async () => {
    const pool = new StreamBufferPool(1000);
    const call = new AbortController();
    const stream = new StreamBuffer(pool, call.signal);
    const page = await stream.reserve(100);
    const empty = stream.untilEmpty();
    assert.equal(await settled(empty), false);
    page.release();
    assert.equal(await settled(empty), true);
    await stream.reserve(100);
    const never = stream.untilEmpty();
    call.abort();
    assert.equal(await settled(never), true);
  });

  it("gives everything back on close, ends waiting reservations, and ignores late releases", async () => {
    const pool = new StreamBufferPool(150);
    const other = new StreamBuffer(pool, new AbortController().signal);
    const stream = new StreamBuffer(pool, new AbortController().signal);
    const held = await stream.reserve(100);
    const waiting = stream.reserve(100); // the pool has 50 left
    assert.equal(await settled(waiting), false);
    stream.close();
    await assert.rejects(waiting);
    assert.equal(pool.used, 0);
    held.release();
    assert.equal(pool.used, 0, "a write callback after close gives back nothing twice");
    await other.reserve(150);
    assert.equal(pool.used, 150);
  });
});
