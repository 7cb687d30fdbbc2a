// The writer shards and readers end to end over loopback gRPC: 3 writer shards and 2
// readers on one store, driven through the TypeScript client and through raw calls to
// each shard (which forward to the owner).
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create, fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { Client, credentials, type ServiceError, status } from "@grpc/grpc-js";
import {
  type AckMode,
  AppendRequestSchema,
  type AppendResponse,
  AppendSessionRequestSchema,
  type AppendSessionResponse,
  BadRequestSchema,
  type Compression,
  CreateKeyspaceRequestSchema,
  callBidiStream,
  callServerStream,
  callUnary,
  fromUint128,
  GetShardsRequestSchema,
  type Insertion,
  InsertionSchema,
  Order,
  packInsertions,
  ReaderService,
  ReadPageRequestSchema,
  ReadStreamRequestSchema,
  StatusSchema,
  toUint128,
  unpackItems,
  unpackOutcomes,
  WriterService,
} from "@klstore/proto";
import { type RunningReader, startReader } from "@klstore/reader-service";
import { createLogger } from "@klstore/service-runtime";
import type { Shard } from "@klstore/sharding";
import { type RunningWriterShard, startWriterShard } from "@klstore/writer-service";
import type { Registry } from "prom-client";
import { freePort } from "../../../e2e/support/processes.ts";
import { backends } from "../../core/test/backends.ts";
import { type ClientItem, KlstoreClient } from "../src/klstore-client.ts";

const logger = createLogger("test", "silent");
const text = (items: readonly ClientItem[]) => items.map((i) => Buffer.from(i.value).toString());

async function collect(iterable: AsyncIterable<ClientItem>): Promise<ClientItem[]> {
  const out: ClientItem[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** A metric's value summed over the label sets that match `labels`. */
async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} exists`);
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}

function statusOf(err: unknown): ServiceError {
  assert.ok(err instanceof Error && "code" in err, `a gRPC error, got ${String(err)}`);
  return err as ServiceError;
}

for (const backend of backends()) {
  describe(`writer shards and readers (${backend.name})`, () => {
    let writers: RunningWriterShard[] = [];
    let readers: RunningReader[] = [];
    let client: KlstoreClient;
    let shards: Shard[];
    let cleanup: () => Promise<void>;

    before(async () => {
      const opened = await backend.open();
      cleanup = opened.cleanup;
      // Ports are picked by the OS; the shard list needs them up front, so bind in two steps.
      const names = ["writer-0", "writer-1", "writer-2"];
      const ports = await Promise.all(names.map(() => freePort()));
      shards = names.map((name, i) => ({ name, address: `127.0.0.1:${ports[i]}` }));
      writers = await Promise.all(
        shards.map((s) =>
          startWriterShard(
            // Compaction after 4 objects, so the metrics test sees one.
            {
              store: opened.url,
              name: s.name,
              shards,
              server: { listen: s.address },
              writer: { compactObjectsThreshold: 4 },
            },
            logger,
          ),
        ),
      );
      readers = await Promise.all(
        [0, 1].map(() =>
          startReader({ store: opened.url, server: { listen: "127.0.0.1:0" }, followPollMillis: 50 }, logger),
        ),
      );
      client = new KlstoreClient({ writers: shards, reader: readers[0]?.address as string });
      await client.createKeyspace("ks");
    });

    after(async () => {
      client?.close();
      await Promise.all([...writers.map((w) => w.close()), ...readers.map((r) => r.close())]);
      await cleanup?.();
    });

    it("lands appends on the owning shard, whichever shard receives them, and reads them back through every reader", async () => {
      const keys = Array.from({ length: 12 }, (_, i) => `key/${i} ü`);
      const owners = new Set(keys.map((k) => client.ring.ownerOf("ks", k).name));
      assert.equal(owners.size, 3, "the keys spread over all shards");
      for (const [i, key] of keys.entries()) {
        // Half through the client (routed to the owner), half to a shard that may not own it.
        if (i % 2 === 0) {
          const outcomes = await client.append("ks", key, [{ value: "a", nonce: 1n }, { value: "b" }]);
          assert.deepEqual(
            outcomes.map((o) => o.kind === "appended" && o.offset),
            [0n, 1n],
          );
        } else {
          const shard = new Client(writers[i % 3]?.address as string, credentials.createInsecure());
          const request = create(AppendRequestSchema, {
            keyspace: "ks",
            key,
            insertions: [
              create(InsertionSchema, { value: Buffer.from("a") }),
              create(InsertionSchema, { value: Buffer.from("b") }),
            ],
          });
          const res = await callUnary(shard, WriterService, "append", request);
          assert.equal(res.outcomes.length, 2);
          shard.close();
        }
      }
      const second = new KlstoreClient({ writers: client.ring.shards, reader: readers[1]?.address as string });
      try {
        for (const key of keys) {
          assert.deepEqual(text(await collect(client.items("ks", key))), ["a", "b"], key);
          assert.deepEqual(text((await second.readPage("ks", key)).items), ["a", "b"], key);
        }
        // A duplicate nonce through the client is reported, not stored.
        const [dup] = await client.append("ks", keys[0] as string, [{ value: "again", nonce: 1n }]);
        assert.equal(dup?.kind, "duplicate");
        const meta = await second.keyMetadata("ks", keys[0] as string);
        assert.equal(meta?.nextOffset, 2n);
        assert.equal(meta?.nextNonce, 2n);
      } finally {
        second.close();
      }
    });

    it("answers bad input with the right status code and details", async () => {
      await assert.rejects(client.createKeyspace("ks"), (e) => statusOf(e).code === status.ALREADY_EXISTS);
      await assert.rejects(client.append("nope", "k", [{ value: "x" }]), (e) => statusOf(e).code === status.NOT_FOUND);
      await assert.rejects(client.readPage("nope", "k"), (e) => statusOf(e).code === status.NOT_FOUND);
      await assert.rejects(
        client.readPage("ks", "k", { continuation: "not-a-token" }),
        (e) => statusOf(e).code === status.INVALID_ARGUMENT,
      );
      // Streams end with the status too (a stream that just stopped would leave the client waiting).
      const drain = async (items: AsyncIterable<unknown>) => {
        for await (const _ of items);
      };
      await assert.rejects(drain(client.items("nope", "k")), (e) => statusOf(e).code === status.NOT_FOUND);
      await assert.rejects(
        drain(client.items("ks", "k", { continuation: "not-a-token" })),
        (e) => statusOf(e).code === status.INVALID_ARGUMENT,
      );
      await assert.rejects(
        drain(client.items("ks", "k", { follow: true, order: "backwards" })),
        (e) => statusOf(e).code === status.INVALID_ARGUMENT && /follow/.test(statusOf(e).details),
      );
      await assert.rejects(
        client.append("ks", "", [{ value: "x" }]),
        (e) => statusOf(e).code === status.INVALID_ARGUMENT,
      );
      await assert.rejects(client.append("ks", "k", [{ value: "x", nonce: (1n << 128n) - 1n }]), (e) => {
        const err = statusOf(e);
        assert.equal(err.code, status.INVALID_ARGUMENT);
        const bin = err.metadata.get("grpc-status-details-bin")[0] as Buffer;
        const rpcStatus = fromBinary(StatusSchema, bin);
        const badRequest = rpcStatus.details.map((d) => anyUnpack(d, BadRequestSchema)).find((d) => d !== undefined);
        // The client sends its insertions packed: the field at fault is that byte string.
        assert.equal(badRequest?.fieldViolations[0]?.field, "packed_insertions");
        assert.match(err.details, /insertion 0's nonce/);
        return true;
      });
      // Enum values this server does not know are refused, not taken for the default.
      const shard = new Client(writers[0]?.address as string, credentials.createInsecure());
      const reader = new Client(readers[0]?.address as string, credentials.createInsecure());
      const invalid = (field: string) => (e: unknown) =>
        statusOf(e).code === status.INVALID_ARGUMENT && statusOf(e).details.includes(field);
      try {
        await assert.rejects(
          callUnary(
            shard,
            WriterService,
            "createKeyspace",
            create(CreateKeyspaceRequestSchema, { keyspace: "enum", compression: 7 as Compression }),
          ),
          invalid("compression"),
        );
        await assert.rejects(
          callUnary(
            shard,
            WriterService,
            "append",
            create(AppendRequestSchema, { keyspace: "ks", key: "k", ackMode: 7 as AckMode }),
          ),
          invalid("ack_mode"),
        );
        await assert.rejects(
          callUnary(
            reader,
            ReaderService,
            "readPage",
            create(ReadPageRequestSchema, { keyspace: "ks", key: "k", order: 7 as Order }),
          ),
          invalid("order"),
        );
      } finally {
        shard.close();
        reader.close();
      }
    });

    it("learns every shard from any one of them (GetShards) and routes appends to their owners", async () => {
      const forwarded = async () =>
        (
          await Promise.all(writers.map((w) => metricValue(w.metrics.registry, "klstore_forwarded_requests_total")))
        ).reduce((a, b) => a + b, 0);
      for (const [i, seed] of shards.entries()) {
        // Each shard answers with the whole configured list and names itself.
        const shard = new Client(seed.address, credentials.createInsecure());
        try {
          const answer = await callUnary(shard, WriterService, "getShards", create(GetShardsRequestSchema));
          assert.deepEqual(
            answer.shards.map((s) => ({ name: s.name, address: s.address })),
            shards,
          );
          assert.equal(answer.thisShard, seed.name);
        } finally {
          shard.close();
        }

        const discovered = await KlstoreClient.discover({
          writer: seed.address,
          reader: readers[0]?.address as string,
        });
        try {
          assert.deepEqual(discovered.ring.shards, shards);
          assert.deepEqual(await discovered.shards(), { shards, thisShard: "writer-0" });
          const keys = Array.from({ length: 12 }, (_, k) => `discovered/${i}/${k}`);
          assert.equal(new Set(keys.map((k) => discovered.ring.ownerOf("ks", k).name)).size, 3, "keys on every shard");
          const before = await forwarded();
          for (const key of keys) await discovered.append("ks", key, [{ value: "d" }]);
          assert.equal(await forwarded(), before, "every append went straight to its owner");
          const page = await discovered.readPage("ks", keys[0] as string);
          assert.deepEqual(text(page.items), ["d"]);
        } finally {
          discovered.close();
        }
      }
      // A process that is no writer shard: the status says so.
      await assert.rejects(
        KlstoreClient.discover({ writer: readers[0]?.address as string, reader: readers[0]?.address as string }),
        (e) => statusOf(e).code === status.UNIMPLEMENTED,
      );
    });

    it("takes insertions packed or as messages, here or forwarded, and answers in the form they came in", async () => {
      const shards = writers.map((w) => new Client(w.address, credentials.createInsecure()));
      const outcomesOf = (r: { outcomes: AppendResponse["outcomes"]; packedOutcomes: Uint8Array }) =>
        r.packedOutcomes.byteLength > 0
          ? unpackOutcomes(r.packedOutcomes).map((o) => o?.offset ?? "duplicate")
          : r.outcomes.map((o) => (o.outcome.case === "appended" ? o.outcome.value.offset : "duplicate"));
      try {
        let next = 0n;
        let nonce = 0n;
        // Every shard receives both forms: the key's owner stores them, the others forward.
        for (const shard of shards) {
          for (const packed of [false, true]) {
            const items = [
              { value: Buffer.from(`n${nonce}`), nonce },
              { value: Buffer.from("dup"), nonce },
              { value: Buffer.from("timed"), timestamp: 1n },
            ];
            nonce++;
            const request = create(AppendRequestSchema, {
              keyspace: "ks",
              key: "forms-in",
              ...(packed
                ? { packedInsertions: packInsertions(items) }
                : {
                    insertions: items.map((i) =>
                      create(InsertionSchema, {
                        value: i.value,
                        nonce: toUint128(i.nonce),
                        timestampMillis: i.timestamp,
                      }),
                    ),
                  }),
            });
            const response = await callUnary(shard, WriterService, "append", request);
            assert.equal(response.packedOutcomes.byteLength > 0, packed);
            assert.equal(response.outcomes.length > 0, !packed);
            assert.deepEqual(outcomesOf(response), [next, "duplicate", next + 1n]);
            next += 2n;
          }
        }
        const stored = await collect(client.items("ks", "forms-in"));
        assert.equal(stored.length, Number(next));
        assert.deepEqual(
          stored.filter((i) => i.nonce !== undefined).map((i) => i.nonce),
          Array.from({ length: 6 }, (_, i) => BigInt(i)),
        );

        // One session mixing both forms gets each answer in its request's form.
        const stream = callBidiStream(shards[0] as Client, WriterService, "appendSession");
        const responses: AppendSessionResponse[] = [];
        const done = (async () => {
          for await (const r of stream) responses.push(r);
        })();
        for (let i = 0; i < 6; i++) {
          const items = [{ value: Buffer.from(`s${i}`) }];
          stream.write(
            create(AppendSessionRequestSchema, {
              sequence: BigInt(i),
              keyspace: "ks",
              key: `forms-session-${i % 3}`,
              ...(i % 2 === 1
                ? { packedInsertions: packInsertions(items) }
                : { insertions: items.map((v) => create(InsertionSchema, v)) }),
            }),
          );
        }
        stream.end();
        await done;
        assert.deepEqual(
          responses.map((r) => [r.sequence, r.packedOutcomes.byteLength > 0, outcomesOf(r).length]),
          Array.from({ length: 6 }, (_, i) => [BigInt(i), i % 2 === 1, 1]),
        );

        // Bad packed input is refused whole, naming the field, and stores nothing.
        const refused = async (fields: { packedInsertions: Uint8Array; insertions?: Insertion[] }, why: RegExp) =>
          assert.rejects(
            callUnary(
              shards[1] as Client,
              WriterService,
              "append",
              create(AppendRequestSchema, { keyspace: "ks", key: "forms-bad", ...fields }),
            ),
            (e) => statusOf(e).code === status.INVALID_ARGUMENT && why.test(statusOf(e).details),
          );
        const good = packInsertions([{ value: Buffer.from("ok") }]);
        await refused({ packedInsertions: good.subarray(0, good.length - 1) }, /packed_insertions.*cut short/);
        await refused({ packedInsertions: Uint8Array.of(0, 0, 0, 0, 8) }, /packed_insertions.*unknown flags/);
        // Past max_items_per_append (100,000): refused while unpacking, not after.
        const empties = packInsertions(Array.from({ length: 100_001 }, () => ({ value: new Uint8Array(0) })));
        await refused({ packedInsertions: empties }, /packed_insertions.*more than 100000 insertions/);
        await refused(
          { packedInsertions: good, insertions: [create(InsertionSchema, { value: Buffer.from("x") })] },
          /packed_insertions.*together with insertions/,
        );
        assert.equal(await client.keyMetadata("ks", "forms-bad"), undefined);
      } finally {
        for (const shard of shards) shard.close();
      }
    });

    it("acknowledges pipelined AppendSession requests in order, with in-band errors", async () => {
      const shard = new Client(writers[0]?.address as string, credentials.createInsecure());
      const stream = callBidiStream(shard, WriterService, "appendSession");
      const responses: AppendSessionResponse[] = [];
      const done = (async () => {
        for await (const r of stream) responses.push(r);
      })();
      for (let i = 0; i < 60; i++) {
        stream.write(
          create(AppendSessionRequestSchema, {
            sequence: BigInt(i),
            keyspace: i === 30 ? "missing" : "ks",
            key: `session-${i % 4}`,
            insertions: [create(InsertionSchema, { value: Buffer.from(`v${i}`) })],
          }),
        );
      }
      stream.end();
      await done;
      shard.close();
      assert.deepEqual(
        responses.map((r) => r.sequence),
        Array.from({ length: 60 }, (_, i) => BigInt(i)),
      );
      assert.equal(responses[30]?.error?.code, status.NOT_FOUND);
      assert.equal(responses.filter((r) => r.error).length, 1);
      const expected = Array.from({ length: 60 }, (_, i) => i).filter((i) => i % 4 === 1 && i !== 30);
      assert.deepEqual(
        text(await collect(client.items("ks", "session-1"))),
        expected.map((i) => `v${i}`),
      );
    });

    it("delivers new items to followers within a bounded time, polling once per key for all of them", async () => {
      const abort = new AbortController();
      const followers = [0, 1, 2, 3].map(async () => {
        const seen: string[] = [];
        for await (const item of client.items("ks", "followed", { follow: true, signal: abort.signal })) {
          seen.push(Buffer.from(item.value).toString());
          if (seen.length === 3) break;
        }
        return seen;
      });
      const started = Date.now();
      await client.append("ks", "followed", [{ value: "one" }]);
      await client.append("ks", "followed", [{ value: "two" }, { value: "three" }]);
      let timer: NodeJS.Timeout | undefined;
      const results = await Promise.race([
        Promise.all(followers),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("followers too slow")), 60_000);
        }),
      ]).finally(() => clearTimeout(timer));
      abort.abort();
      for (const seen of results) assert.deepEqual(seen, ["one", "two", "three"]);
      const elapsed = Date.now() - started;
      const hub = readers[0]?.hub;
      assert.ok(hub);
      // 4 followers polling alone would poll about 4x as often as the shared poller.
      assert.ok(hub.polls <= elapsed / 50 + 4, `${hub.polls} polls in ${elapsed} ms for 4 followers`);
    });
    it("streams many pages in both orders, with and without a limit, each item once and in order", async () => {
      const values = Array.from({ length: 230 }, (_, i) => `v${i}`);
      for (let i = 0; i < values.length; i += 50) {
        await client.append(
          "ks",
          "paged",
          values.slice(i, i + 50).map((value) => ({ value })),
        );
      }
      const read = async (options: { order?: "forwards" | "backwards"; limit?: bigint }) =>
        text(await collect(client.items("ks", "paged", { pageSize: 7, ...options })));
      const registry = (readers[0] as RunningReader).metrics.registry;
      const objectReads = async () =>
        (await metricValue(registry, "klstore_object_cache_hits_total")) +
        (await metricValue(registry, "klstore_object_cache_misses_total"));
      const readsBefore = await objectReads();
      assert.deepEqual(await read({}), values);
      // 33 pages from at most 5 objects (5 appends, some compacted): each object is
      // fetched once by the stream, not once per page.
      const objectsRead = (await objectReads()) - readsBefore;
      assert.ok(objectsRead <= 5, `${objectsRead} object reads for one stream of 33 pages`);
      assert.deepEqual(await read({ order: "backwards" }), [...values].reverse());
      assert.deepEqual(await read({ limit: 30n }), values.slice(0, 30));
      assert.deepEqual(await read({ limit: 29n }), values.slice(0, 29));
      assert.deepEqual(await read({ order: "backwards", limit: 15n }), [...values].reverse().slice(0, 15));
    });

    it("sends the same items packed as in Item messages, pages and streams, both orders", async () => {
      const nonce = (1n << 100n) + 7n;
      await client.append("ks", "forms", [
        { value: "plain" },
        { value: "", nonce },
        { value: Buffer.from([0, 255, 10]), timestamp: 5n },
      ]);
      const reader = new Client(readers[1]?.address as string, credentials.createInsecure());
      const fields = (i: { offset: bigint; timestamp: bigint; nonce: bigint | undefined; value: Uint8Array }) =>
        [i.offset, i.timestamp, i.nonce, Buffer.from(i.value).toString("hex")] as const;
      try {
        for (const order of [Order.FORWARDS, Order.BACKWARDS]) {
          const page = (packed: boolean) =>
            callUnary(
              reader,
              ReaderService,
              "readPage",
              create(ReadPageRequestSchema, { keyspace: "ks", key: "forms", order, packed }),
            );
          const asMessages = await page(false);
          const asPacked = await page(true);
          assert.equal(asMessages.packedItems.byteLength, 0);
          assert.equal(asPacked.items.length, 0);
          const expected = asMessages.items.map((i) =>
            fields({ offset: i.offset, timestamp: i.timestampMillis, nonce: fromUint128(i.nonce), value: i.value }),
          );
          assert.equal(expected.length, 3);
          assert.equal(expected[1]?.[2], nonce); // offset 1 is in the middle either way
          // Packed records ascend whichever the order.
          const inOrder = (packed: Uint8Array) =>
            order === Order.BACKWARDS ? unpackItems(packed).reverse() : unpackItems(packed);
          assert.deepEqual(inOrder(asPacked.packedItems).map(fields), expected);

          const streamed = async (packed: boolean) => {
            const messages = [];
            const req = create(ReadStreamRequestSchema, { keyspace: "ks", key: "forms", order, pageSize: 2, packed });
            for await (const m of callServerStream(reader, ReaderService, "readStream", req, {})) messages.push(m);
            return messages;
          };
          const streamedMessages = await streamed(false);
          const streamedPacked = await streamed(true);
          assert.equal(streamedPacked.length, 2);
          assert.deepEqual(
            streamedPacked.map((m) => m.continuation),
            streamedMessages.map((m) => m.continuation),
          );
          assert.ok(streamedPacked.every((m) => m.items.length === 0 && m.packedItems.byteLength > 0));
          assert.deepEqual(streamedPacked.flatMap((m) => inOrder(m.packedItems)).map(fields), expected);
        }
      } finally {
        reader.close();
      }
    });

    it("receives stream and page messages larger than grpc's 4 MiB default", async () => {
      const big = Array.from({ length: 5 }, (_, i) => ({ value: Buffer.alloc(1024 * 1024 - 64, 0x61 + i) }));
      await client.append("ks", "large", big);
      const streamed = await collect(client.items("ks", "large", { pageSize: 5 }));
      assert.deepEqual(
        streamed.map((i) => i.value.byteLength),
        big.map((b) => b.value.byteLength),
      );
      assert.equal((await client.readPage("ks", "large", { maxItems: 5 })).items.length, 5);
    });

    it("answers ACK_MODE_ACCEPTED on acceptance and still stores the items", async () => {
      const outcomes = await client.append("ks", "accepted", [{ value: "a" }, { value: "b" }], { acceptedOnly: true });
      assert.deepEqual(outcomes, [], "no per-item outcomes before durability");
      await client.flushKey("ks", "accepted");
      assert.deepEqual(text((await client.readPage("ks", "accepted")).items), ["a", "b"]);
    });

    it("counts appends, duplicates, batches, compactions, pages, followers, the cache and errors in its metrics", async () => {
      const key = "metered";
      const owner = writers[client.ring.shards.indexOf(client.ring.ownerOf("ks", key))] as RunningWriterShard;
      const reader = readers[0] as RunningReader;
      const w = (name: string, labels?: Record<string, string>) => metricValue(owner.metrics.registry, name, labels);
      const r = (name: string, labels?: Record<string, string>) => metricValue(reader.metrics.registry, name, labels);
      const before = {
        appends: await w("klstore_appends_total"),
        items: await w("klstore_appended_items_total"),
        bytes: await w("klstore_appended_bytes_total"),
        duplicates: await w("klstore_duplicate_items_total"),
        batches: await w("klstore_batches_total"),
        compactions: await w("klstore_compactions_total"),
        puts: await w("klstore_storage_requests_total", { operation: "put", outcome: "ok" }),
        pages: await r("klstore_pages_served_total", { call: "read_page" }),
        hits: await r("klstore_object_cache_hits_total"),
      };
      for (let i = 0; i < 4; i++) {
        await client.append("ks", key, [{ value: `v${i}`, nonce: BigInt(i) }]);
      }
      await client.append("ks", key, [{ value: "again", nonce: 0n }]);
      assert.equal((await w("klstore_appends_total")) - before.appends, 5);
      assert.equal((await w("klstore_appended_items_total")) - before.items, 4);
      assert.equal((await w("klstore_appended_bytes_total")) - before.bytes, 8);
      assert.equal((await w("klstore_duplicate_items_total")) - before.duplicates, 1);
      assert.equal((await w("klstore_batches_total")) - before.batches, 4, "a duplicate-only append writes nothing");
      assert.equal((await w("klstore_compactions_total")) - before.compactions, 1);
      assert.ok((await w("klstore_storage_requests_total", { operation: "put", outcome: "ok" })) - before.puts >= 5);
      assert.equal(await w("klstore_writer_queue_items"), 0);

      await client.readPage("ks", key);
      await client.readPage("ks", key);
      assert.equal((await r("klstore_pages_served_total", { call: "read_page" })) - before.pages, 2);
      assert.ok((await r("klstore_object_cache_hits_total")) > before.hits, "the second read comes from the cache");

      const missingOwner = writers[client.ring.shards.indexOf(client.ring.ownerOf("nope", "k"))] as RunningWriterShard;
      const notFound = { method: "/klstore.v1.WriterService/Append", code: "NOT_FOUND" };
      const notFoundBefore = await metricValue(missingOwner.metrics.registry, "klstore_grpc_calls_total", notFound);
      await assert.rejects(client.append("nope", "k", [{ value: "x" }]));
      assert.equal(
        (await metricValue(missingOwner.metrics.registry, "klstore_grpc_calls_total", notFound)) - notFoundBefore,
        1,
      );

      const stop = new AbortController();
      const following = collect(client.items("ks", key, { follow: true, signal: stop.signal }));
      while (reader.hub.waiting === 0) await new Promise((done) => setTimeout(done, 10));
      assert.equal(await r("klstore_followers"), 1);
      stop.abort();
      await following;
      const deadline = Date.now() + 30_000;
      while ((await r("klstore_followers")) !== 0 && Date.now() < deadline) await new Promise((d) => setTimeout(d, 10));
      assert.equal(await r("klstore_followers"), 0);
      assert.equal(await r("klstore_follow_polls_total"), reader.hub.polls);

      const exposition = await owner.metrics.registry.metrics();
      for (const name of [
        "klstore_storage_request_seconds_bucket",
        "klstore_grpc_call_seconds_bucket",
        "klstore_batch_items_bucket",
        "klstore_writer_queue_bytes",
        "klstore_process_resident_memory_bytes",
      ]) {
        assert.ok(exposition.includes(name), name);
      }
    });
  });
}
