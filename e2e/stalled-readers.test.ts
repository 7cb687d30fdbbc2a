// Readers that stop reading, against a real `klstore serve reader` on SeaweedFS: 100
// ReadStreams of 1 MiB values (half unpacked, half packed) whose clients never read hold
// two pages each and no more, so the reader's RSS stays within the bound docs/operations.md
// states; the stream limits (per connection, per process, and the bytes all streams hold)
// answer RESOURCE_EXHAUSTED naming their config key, and streams work again once others end.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { status } from "@grpc/grpc-js";
import { KlstoreClient } from "@klstore/client";
import {
  Order,
  ReadStreamRequestSchema,
  ReadStreamResponseSchema,
  RetryInfoSchema,
  StatusSchema,
  unpackItems,
  WatchKeyspaceRequestSchema,
} from "@klstore/proto";
import {
  ensureBucket,
  S3_ENDPOINT,
  type ServedProcess,
  scrape,
  serve,
  stop,
  writeConfig,
} from "./support/processes.ts";
import { type RawConnection, type RawStatus, type RawStream, rawConnection } from "./support/raw-grpc.ts";

const MiB = 1024 * 1024;
/** Bytes an item takes in a page's account besides its value (services/reader/src/messages.ts). */
const ITEM_FRAMING_BYTES = 64;
const KEYSPACE = "stalls";
const VALUES = 24;
/**
 * What docs/operations.md allows a reader beyond its idle RSS for having served (V8's heap
 * grown to its working size), and per open stream (grpc-js and HTTP/2 call state): the
 * bound is these, the object cache, and twice the pages the streams hold (the pages, and
 * copies made while sending them that are not collected yet).
 */
const SERVING_HEADROOM = 128 * MiB;
const STREAM_OVERHEAD_BYTES = 64 * 1024;
const READ_STREAM = "/klstore.v1.ReaderService/ReadStream";
const WATCH_KEYSPACE = "/klstore.v1.ReaderService/WatchKeyspace";

/** The process's resident memory, as the kernel counts it. */
function residentBytes(served: ServedProcess): number {
  const kib = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${served.child.pid}/status`, "utf8"))?.[1];
  assert.ok(kib, "VmRSS in /proc/PID/status");
  return Number(kib) * 1024;
}

async function until(what: string, ready: () => Promise<boolean>, timeoutMillis = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMillis;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A ReadStream that reads nothing until `resume()`. */
function stalledRead(connection: RawConnection, packed: boolean, key = "big"): RawStream {
  const request = create(ReadStreamRequestSchema, { keyspace: KEYSPACE, key, order: Order.FORWARDS, packed });
  return connection.serverStream(READ_STREAM, toBinary(ReadStreamRequestSchema, request));
}

function watch(connection: RawConnection): RawStream {
  const request = create(WatchKeyspaceRequestSchema, { keyspace: KEYSPACE });
  return connection.serverStream(WATCH_KEYSPACE, toBinary(WatchKeyspaceRequestSchema, request));
}

/** Reads a stream to its end (OK); resolves with the count of items it sent. */
async function readToEnd(stream: RawStream): Promise<number> {
  stream.resume();
  const ended = await stream.ended;
  assert.equal(ended.code, status.OK, ended.details);
  let items = 0;
  for (const bytes of stream.messages) {
    const message = fromBinary(ReadStreamResponseSchema, bytes);
    items += message.packedItems.byteLength > 0 ? unpackItems(message.packedItems).length : message.items.length;
  }
  return items;
}

/** Asserts a refusal: RESOURCE_EXHAUSTED, its message naming the config key, with RetryInfo. */
function assertRefused(ended: RawStatus, configKey: string): void {
  assert.equal(ended.code, status.RESOURCE_EXHAUSTED, ended.details);
  assert.match(ended.details, new RegExp(`\\[reader\\] ${configKey} = \\d+`));
  const rpcStatus = fromBinary(StatusSchema, ended.statusDetails);
  const retry = rpcStatus.details.map((d) => anyUnpack(d, RetryInfoSchema)).find((d) => d !== undefined);
  assert.ok(retry?.retryDelay, "RetryInfo says when to retry");
}

describe("readers whose clients stop reading (real processes, SeaweedFS)", { skip: !S3_ENDPOINT && "needs S3" }, () => {
  let configFile: string;
  let writer: ServedProcess;
  const readers: ServedProcess[] = [];
  const connections: RawConnection[] = [];

  const startReader = async (sets: string[]) => {
    const reader = await serve("reader", configFile, [
      "reader.listen=127.0.0.1:0",
      "reader.metrics_listen=127.0.0.1:0",
      ...sets,
    ]);
    readers.push(reader);
    return reader;
  };
  /** A connection of its own, with klstore's client window (4 MiB) or HTTP/2's default (64 KiB). */
  const connect = (reader: ServedProcess, window = 65_535) => {
    const c = rawConnection(reader.address, window);
    connections.push(c);
    return c;
  };

  before(async () => {
    await ensureBucket();
    configFile = writeConfig().file;
    writer = await serve("writer", configFile, ["writer.listen=127.0.0.1:0"]);
    const client = new KlstoreClient({ writers: `writer-0=${writer.address}`, reader: writer.address });
    try {
      await client.createKeyspace(KEYSPACE);
      const value = new Uint8Array(MiB).fill(7);
      for (let i = 0; i < VALUES; i += 4) {
        await client.append(
          KEYSPACE,
          "big",
          Array.from({ length: 4 }, () => ({ value })),
        );
      }
      // Values of 1 MiB less their framing: a page of one holds exactly 1 MiB.
      const exact = new Uint8Array(MiB - ITEM_FRAMING_BYTES).fill(9);
      await client.append(
        KEYSPACE,
        "exact",
        Array.from({ length: 8 }, () => ({ value: exact })),
      );
    } finally {
      client.close();
    }
  });

  after(async () => {
    for (const c of connections) c.close();
    await Promise.all([...readers, writer].filter((p) => p).map(stop));
  });

  it("holds two pages per stalled stream: 100 of them stay within the stated RSS bound", async () => {
    const objectCacheBytes = 64 * MiB;
    const reader = await startReader([`reader.object_cache_bytes=${objectCacheBytes}`]);
    const metrics = reader.metrics as string;
    const idle = residentBytes(reader);
    // One full read first: the objects are in the cache, the process has served a stream.
    const client = new KlstoreClient({ writers: `writer-0=${writer.address}`, reader: reader.address });
    let read = 0;
    for await (const _ of client.items(KEYSPACE, "big")) read++;
    assert.equal(read, VALUES);
    const served = residentBytes(reader);

    // Half with klstore's client window (4 MiB), half with HTTP/2's default (64 KiB).
    const links = [4 * MiB, 4 * MiB, 65_535, 65_535].map((window) => connect(reader, window));
    const streams = Array.from({ length: 100 }, (_, i) => stalledRead(links[i % 4] as RawConnection, i % 2 === 0));
    // Every stream ends up holding two pages of one value each (one in the transport, one read
    // ahead), whatever its client's window took before it filled.
    const held = 100 * 2 * (MiB + ITEM_FRAMING_BYTES);
    await until("every stream holding two pages", async () => {
      return (await scrape(metrics, "klstore_stream_buffer_bytes")) === held;
    });
    const stalled = residentBytes(reader);
    process.stdout.write(
      `# reader RSS: idle ${(idle / MiB).toFixed(0)} MiB, after one read ${(served / MiB).toFixed(0)} MiB, ` +
        `with 100 stalled streams ${(stalled / MiB).toFixed(0)} MiB\n`,
    );
    assert.equal(await scrape(metrics, "klstore_streams"), 100);
    assert.equal(await scrape(metrics, "klstore_stream_buffer_waits_total"), 0);
    // docs/operations.md: idle RSS + 128 MiB + the object cache + twice what the streams hold
    // (at most total_stream_buffer_bytes) + 64 KiB per open stream.
    const bound = idle + SERVING_HEADROOM + objectCacheBytes + 2 * held + 100 * STREAM_OVERHEAD_BYTES;
    assert.ok(
      stalled <= bound,
      `RSS ${(stalled / MiB).toFixed(0)} MiB above the bound of ${(bound / MiB).toFixed(0)} MiB`,
    );

    // A client that reads is served meanwhile.
    let again = 0;
    for await (const _ of client.items(KEYSPACE, "big")) again++;
    client.close();
    assert.equal(again, VALUES);

    for (const s of streams) s.cancel();
    await until("the streams' pages given back", async () => {
      return (
        (await scrape(metrics, "klstore_stream_buffer_bytes")) === 0 && (await scrape(metrics, "klstore_streams")) === 0
      );
    });
  });

  it("refuses streams past max_streams_per_connection and max_streams, and admits them once others end", async () => {
    const reader = await startReader(["reader.max_streams_per_connection=3", "reader.max_streams=5"]);
    const metrics = reader.metrics as string;
    const [a, b, c] = [connect(reader), connect(reader), connect(reader)];
    const onA = [stalledRead(a, true), stalledRead(a, false), stalledRead(a, true)];
    await until("3 streams open", async () => (await scrape(metrics, "klstore_streams")) === 3);
    assertRefused(await stalledRead(a, true).ended, "max_streams_per_connection");

    // A watch counts as a stream too; the process's limit is reached across connections.
    const watching = watch(b);
    const onB = stalledRead(b, true);
    await until("5 streams open", async () => (await scrape(metrics, "klstore_streams")) === 5);
    assertRefused(await stalledRead(c, false).ended, "max_streams");
    assertRefused(await watch(c).ended, "max_streams");
    assert.equal(await scrape(metrics, "klstore_streams_refused_total", { limit: "max_streams_per_connection" }), 1);
    assert.equal(await scrape(metrics, "klstore_streams_refused_total", { limit: "max_streams" }), 2);

    // One stream on A ends: A and the process have room for one again, and it works.
    (onA[0] as RawStream).cancel();
    await until("4 streams open", async () => (await scrape(metrics, "klstore_streams")) === 4);
    assert.equal(await readToEnd(stalledRead(a, false)), VALUES);
    // The stalled ones, read after all, were held back, not broken.
    assert.equal(await readToEnd(onA[1] as RawStream), VALUES);
    assert.equal(await readToEnd(onB), VALUES);
    watching.cancel();
    (onA[2] as RawStream).cancel();
    await until("no stream open", async () => (await scrape(metrics, "klstore_streams")) === 0);
  });

  it("holds streams back and refuses new ones while total_stream_buffer_bytes is held, until the stalled end", async () => {
    // Pages of exactly 1 MiB: a stalled stream holds two, a slow one the third and waits.
    const reader = await startReader([`reader.total_stream_buffer_bytes=${3 * MiB}`]);
    const metrics = reader.metrics as string;
    const stalled = stalledRead(connect(reader), true, "exact");
    await until("the stalled stream holding two pages", async () => {
      return (await scrape(metrics, "klstore_stream_buffer_bytes")) === 2 * MiB;
    });
    const slow = stalledRead(connect(reader), false, "exact");
    await until("the slow stream waiting for the stalled one", async () => {
      return (
        (await scrape(metrics, "klstore_stream_buffer_bytes")) === 3 * MiB &&
        (await scrape(metrics, "klstore_stream_buffer_waits_total")) === 1
      );
    });
    assertRefused(await stalledRead(connect(reader), true, "exact").ended, "total_stream_buffer_bytes");
    assert.equal(await scrape(metrics, "klstore_streams_refused_total", { limit: "total_stream_buffer_bytes" }), 1);

    stalled.cancel();
    assert.equal(await readToEnd(slow), 8, "the slow stream goes on once the stalled one ended");
    assert.equal(await readToEnd(stalledRead(connect(reader), true, "exact")), 8, "new streams are admitted again");
    await until("nothing held", async () => (await scrape(metrics, "klstore_stream_buffer_bytes")) === 0);
  });
});
