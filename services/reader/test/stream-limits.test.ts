// A reader's streams under clients that stop reading, on the filesystem and on SeaweedFS:
// a stalled ReadStream holds two pages and goes on when read; the process's buffer bound
// holds streams back and refuses new ones; the stream limits (per connection, per process)
// refuse ReadStream and WatchKeyspace with RESOURCE_EXHAUSTED until others end. Clients are
// HTTP/2 streams that really stop reading (e2e/support/raw-grpc.ts).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { StoreWriter } from "@klstore/core";
import {
  Order,
  ReadStreamRequestSchema,
  ReadStreamResponseSchema,
  unpackItems,
  WatchKeyspaceRequestSchema,
} from "@klstore/proto";
import { createLogger } from "@klstore/service-runtime";
import { type RawConnection, type RawStream, rawConnection } from "../../../e2e/support/raw-grpc.ts";
import { backends } from "../../../packages/core/test/backends.ts";
import { ITEM_FRAMING_BYTES } from "../src/messages.ts";
import { type RunningReader, startReader } from "../src/reader-server.ts";

const logger = createLogger("test", "silent");
const PAGE = 256 * 1024;
const VALUES = 10;

async function until(what: string, ready: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function readStream(connection: RawConnection, packed: boolean): RawStream {
  const request = create(ReadStreamRequestSchema, { keyspace: "ks", key: "k", order: Order.FORWARDS, packed });
  return connection.serverStream("/klstore.v1.ReaderService/ReadStream", toBinary(ReadStreamRequestSchema, request));
}

function watch(connection: RawConnection): RawStream {
  const request = toBinary(WatchKeyspaceRequestSchema, create(WatchKeyspaceRequestSchema, { keyspace: "ks" }));
  return connection.serverStream("/klstore.v1.ReaderService/WatchKeyspace", request);
}

/** Reads on to the end; resolves with the values' first bytes, in order. */
async function readToEnd(stream: RawStream): Promise<number[]> {
  stream.resume();
  const ended = await stream.ended;
  assert.equal(ended.code, status.OK, ended.details);
  return stream.messages.flatMap((bytes) => {
    const m = fromBinary(ReadStreamResponseSchema, bytes);
    const values =
      m.packedItems.byteLength > 0 ? unpackItems(m.packedItems).map((i) => i.value) : m.items.map((i) => i.value);
    return values.map((v) => v[0] as number);
  });
}

async function metricValue(r: RunningReader, name: string): Promise<number> {
  const metric = r.metrics.registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} exists`);
  return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
}

async function assertRefused(stream: RawStream, configKey: string): Promise<void> {
  const ended = await stream.ended;
  assert.equal(ended.code, status.RESOURCE_EXHAUSTED, ended.details);
  assert.match(ended.details, new RegExp(`\\[reader\\] ${configKey} = `));
}

const everyValue = Array.from({ length: VALUES }, (_, i) => i);

for (const backend of backends()) {
  describe(`streams whose clients stop reading (${backend.name})`, () => {
    let url: string;
    let cleanup: () => Promise<void>;
    const running: RunningReader[] = [];
    const connections: RawConnection[] = [];

    /** A reader whose pages are one value each (values of a page's size less their framing). */
    const reader = async (limits: {
      totalStreamBufferBytes?: number;
      maxStreams?: number;
      maxStreamsPerConnection?: number;
      objectCacheBytes?: number;
    }) => {
      const r = await startReader(
        { store: url, server: { listen: "127.0.0.1:0" }, streamBufferBytes: 2 * PAGE, ...limits },
        logger,
      );
      running.push(r);
      return r;
    };
    const connect = (r: RunningReader) => {
      const c = rawConnection(r.address);
      connections.push(c);
      return c;
    };

    before(async () => {
      const opened = await backend.open();
      ({ url, cleanup } = opened);
      const writer = new StoreWriter({ store: opened.store, prefix: opened.prefix, config: {} });
      await writer.createKeyspace("ks");
      const values = everyValue.map((i) => ({ value: new Uint8Array(PAGE - ITEM_FRAMING_BYTES).fill(i) }));
      await writer.appendList("ks", "k", values.slice(0, 5));
      await writer.appendList("ks", "k", values.slice(5));
    });

    after(async () => {
      for (const c of connections) c.close();
      await Promise.all(running.map((r) => r.close()));
      await cleanup?.();
    });

    it("holds two pages for a client that stops reading, unpacked or packed, and goes on when it reads", async () => {
      const r = await reader({});
      for (const packed of [false, true]) {
        const stream = readStream(connect(r), packed);
        await until("two pages held", () => r.streamBuffers.used === 2 * PAGE);
        assert.deepEqual(await readToEnd(stream), everyValue);
        await until("nothing held", () => r.streamBuffers.used === 0 && r.admission.open === 0);
      }
    });

    it("lets go of the stored object once the client took nothing for stream_stall_millis, and still sends every item", async () => {
      // No cache: what the stream keeps is all that keeps an object; after the stall the
      // stream GETs the object it was reading again.
      const r = await reader({ objectCacheBytes: 0 });
      for (const packed of [false, true]) {
        const stalls = await metricValue(r, "klstore_stream_stalls_total");
        const gets = r.cacheStats.misses;
        const stream = readStream(connect(r), packed);
        await until("two pages held", () => r.streamBuffers.used === 2 * PAGE);
        const deadline = Date.now() + 20_000;
        while ((await metricValue(r, "klstore_stream_stalls_total")) === stalls) {
          assert.ok(Date.now() < deadline, "timed out waiting for the stall");
          await sleep(10);
        }
        assert.deepEqual(await readToEnd(stream), everyValue, packed ? "packed" : "unpacked");
        // Two objects of five values; the one read when the stream stalled is fetched again.
        assert.ok(r.cacheStats.misses - gets >= 3, `${r.cacheStats.misses - gets} GETs`);
      }
    });

    it("holds streams back at total_stream_buffer_bytes, refuses new ones, and lets them go on once the stalled end", async () => {
      const r = await reader({ totalStreamBufferBytes: 3 * PAGE });
      const stalled = readStream(connect(r), true);
      await until("the stalled stream's two pages", () => r.streamBuffers.used === 2 * PAGE);
      const slow = readStream(connect(r), false);
      await until("the slow stream waiting", () => r.streamBuffers.used === 3 * PAGE && r.streamBuffers.waits === 1);
      await assertRefused(readStream(connect(r), true), "total_stream_buffer_bytes");
      stalled.cancel();
      assert.deepEqual(await readToEnd(slow), everyValue);
      assert.deepEqual(await readToEnd(readStream(connect(r), true)), everyValue);
      await until("nothing held", () => r.streamBuffers.used === 0);
    });

    it("refuses ReadStream and WatchKeyspace past max_streams_per_connection and max_streams until one ends", async () => {
      const r = await reader({ maxStreams: 3, maxStreamsPerConnection: 2 });
      const [a, b] = [connect(r), connect(r)];
      const first = readStream(a, true);
      const watching = watch(a);
      await until("two streams on A", () => r.admission.open === 2);
      await assertRefused(readStream(a, false), "max_streams_per_connection");
      await assertRefused(watch(a), "max_streams_per_connection");
      const onB = readStream(b, false);
      await until("three streams", () => r.admission.open === 3);
      await assertRefused(watch(b), "max_streams");
      assert.deepEqual(r.admission.refused, { connection: 2, process: 1 });

      watching.cancel();
      await until("a place free", () => r.admission.open === 2);
      assert.deepEqual(await readToEnd(readStream(a, false)), everyValue);
      assert.deepEqual(await readToEnd(first), everyValue);
      assert.deepEqual(await readToEnd(onB), everyValue);
      await until("no stream open", () => r.admission.open === 0);
    });
  });
}
