// Forwarding between writer shards over loopback gRPC: an AppendSession's requests for other
// shards' keys pipelined on one stream per owner, which shard serves a call marked as
// forwarded (only a peer's, proven by the shared secret), and shards whose lists disagree.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Client, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import {
  AppendRequestSchema,
  type AppendSessionRequest,
  AppendSessionRequestSchema,
  type AppendSessionResponse,
  callBidiStream,
  callUnary,
  FlushKeyRequestSchema,
  InsertionSchema,
  packInsertions,
  TrimRequestSchema,
  unpackOutcomes,
  WriterService,
} from "@klstore/proto";
import { type RunningReader, startReader } from "@klstore/reader-service";
import { createLogger } from "@klstore/service-runtime";
import { type Shard, ShardRing } from "@klstore/sharding";
import { type RunningWriterShard, startWriterShard } from "@klstore/writer-service";
import type { Registry } from "prom-client";
import { freePort } from "../../../e2e/support/processes.ts";
import { backends } from "../../core/test/backends.ts";
import { type ClientItem, KlstoreClient } from "../src/klstore-client.ts";

const logger = createLogger("test", "silent");
const SECRET = "test-forwarding-secret-0123456789";
const SESSION = "/klstore.v1.WriterService/AppendSession";
const APPEND = "/klstore.v1.WriterService/Append";

/** A metric's value summed over the label sets that match `labels`. */
async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} exists`);
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}

/** Polls `condition`; the deadline is generous, as a loaded machine is slow, not wrong. */
async function until(what: string, condition: () => Promise<boolean>, timeoutMillis = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMillis;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 10));
  }
}

/** Runs one AppendSession to `address` to its end; the answers in the order they came. */
async function session(
  address: string,
  requests: readonly AppendSessionRequest[],
  metadata = new Metadata(),
): Promise<AppendSessionResponse[]> {
  const client = new Client(address, credentials.createInsecure());
  const stream = callBidiStream(client, WriterService, "appendSession", {}, metadata);
  const responses: AppendSessionResponse[] = [];
  const done = (async () => {
    for await (const r of stream) responses.push(r);
  })();
  try {
    for (const request of requests) if (!stream.write(request)) await once(stream, "drain");
    stream.end();
    await done;
  } finally {
    client.close();
  }
  return responses;
}

const oneItem = (sequence: number, keyspace: string, key: string, value: string, nonce?: bigint) =>
  create(AppendSessionRequestSchema, {
    sequence: BigInt(sequence),
    keyspace,
    key,
    packedInsertions: packInsertions([{ value: Buffer.from(value), nonce }]),
  });

function marked(by: string, secret?: string): Metadata {
  const metadata = new Metadata();
  metadata.set("klstore-forwarded-by", by);
  if (secret !== undefined) metadata.set("klstore-forwarding-secret", secret);
  return metadata;
}

async function collect(iterable: AsyncIterable<ClientItem>): Promise<string[]> {
  const out: string[] = [];
  for await (const item of iterable) out.push(Buffer.from(item.value).toString());
  return out;
}

for (const backend of backends()) {
  describe(`forwarding between writer shards (${backend.name})`, () => {
    let url: string;
    let shards: Shard[];
    let writers: RunningWriterShard[] = [];
    let reader: RunningReader;
    let client: KlstoreClient;
    let cleanup: () => Promise<void>;
    const extra: RunningWriterShard[] = [];

    before(async () => {
      const opened = await backend.open();
      url = opened.url;
      cleanup = opened.cleanup;
      const names = ["writer-0", "writer-1", "writer-2"];
      const ports = await Promise.all(names.map(() => freePort()));
      shards = names.map((name, i) => ({ name, address: `127.0.0.1:${ports[i]}` }));
      writers = await Promise.all(
        shards.map((s) =>
          startWriterShard(
            { store: url, name: s.name, shards, server: { listen: s.address }, forwardingSecret: SECRET },
            logger,
          ),
        ),
      );
      reader = await startReader({ store: url, server: { listen: "127.0.0.1:0" } }, logger);
      client = new KlstoreClient({ writers: shards, reader: reader.address });
      await client.createKeyspace("ks");
    });

    after(async () => {
      client?.close();
      await Promise.all([...writers, ...extra].map((w) => w.close()));
      await reader?.close();
      await cleanup?.();
    });

    const registry = (name: string) =>
      (writers[shards.findIndex((s) => s.name === name)] as RunningWriterShard).metrics.registry;
    const keysOwnedBy = (owner: string, count: number, prefix: string) => {
      const keys: string[] = [];
      for (let i = 0; keys.length < count; i++) {
        if (client.ring.ownerOf("ks", `${prefix}${i}`).name === owner) keys.push(`${prefix}${i}`);
      }
      return keys;
    };

    it("pipelines a session's requests for other shards' keys on one stream per owner, keeping each key's order", async () => {
      const keys = ["writer-0", "writer-1", "writer-2"].flatMap((owner) => keysOwnedBy(owner, 4, "pipelined-"));
      const requests = Array.from({ length: 600 }, (_, i) => {
        const key = keys[i % keys.length] as string;
        // Half packed, half as Insertion messages: each answer comes back in its request's form.
        return i % 2 === 0
          ? oneItem(i, "ks", key, `v${i}`, BigInt(i))
          : create(AppendSessionRequestSchema, {
              sequence: BigInt(i),
              keyspace: "ks",
              key,
              insertions: [create(InsertionSchema, { value: Buffer.from(`v${i}`) })],
            });
      });
      const counted = async (name: string) => ({
        sessions: await metricValue(registry(name), "klstore_grpc_calls_total", { method: SESSION }),
        unary: await metricValue(registry(name), "klstore_grpc_calls_total", { method: APPEND }),
        appends: await metricValue(registry(name), "klstore_appends_total"),
        forwarded: await metricValue(registry(name), "klstore_forwarded_requests_total"),
      });
      const before = { 1: await counted("writer-1"), 2: await counted("writer-2"), 0: await counted("writer-0") };

      const responses = await session(shards[0]?.address as string, requests);

      assert.deepEqual(
        responses.map((r) => r.sequence),
        requests.map((r) => r.sequence),
      );
      assert.deepEqual(
        responses.filter((r) => r.error).map((r) => r.error?.message),
        [],
      );
      for (const [i, r] of responses.entries()) {
        const offsets = i % 2 === 0 ? unpackOutcomes(r.packedOutcomes) : r.outcomes;
        assert.equal(offsets.length, 1, `answer ${i} in its request's form`);
      }
      for (const key of keys) {
        const sent = requests.filter((r) => r.key === key).map((r) => `v${r.sequence}`);
        assert.deepEqual(await collect(client.items("ks", key)), sent, `${key} in session order`);
      }
      const forwardedRequests = requests.filter((r) => client.ring.ownerOf("ks", r.key).name !== "writer-0").length;
      assert.equal((await counted("writer-0")).forwarded - before[0].forwarded, forwardedRequests);
      for (const owner of [1, 2] as const) {
        const name = `writer-${owner}`;
        const mine = requests.filter((r) => client.ring.ownerOf("ks", r.key).name === name).length;
        // One AppendSession from writer-0 carried them all (it ends once writer-0's does).
        await until(
          `${name}'s forwarded session to end`,
          async () => (await counted(name)).sessions > before[owner].sessions,
        );
        const now = await counted(name);
        assert.equal(now.sessions - before[owner].sessions, 1, `${name}: one forwarded session`);
        assert.equal(now.unary - before[owner].unary, 0, `${name}: no unary forwards`);
        assert.equal(now.appends - before[owner].appends, mine, `${name} served its keys' requests`);
      }
    });

    it("routes a call whose forwarded-by header has no or a wrong secret like a client's, and serves a peer's where it lands", async () => {
      const [key] = keysOwnedBy("writer-1", 1, "spoofed-");
      const receiver = new Client(shards[0]?.address as string, credentials.createInsecure());
      const appends = (name: string) => metricValue(registry(name), "klstore_appends_total");
      const untrusted = () => metricValue(registry("writer-0"), "klstore_untrusted_forwarded_calls_total");
      const append = (value: string, metadata: Metadata) =>
        callUnary(
          receiver,
          WriterService,
          "append",
          create(AppendRequestSchema, {
            keyspace: "ks",
            key,
            insertions: [create(InsertionSchema, { value: Buffer.from(value) })],
          }),
          {},
          metadata,
        );
      try {
        for (const [what, metadata] of [
          ["no secret", marked("writer-0")],
          ["a wrong secret", marked("writer-2", `${SECRET}-wrong`)],
        ] as const) {
          const before = { 0: await appends("writer-0"), 1: await appends("writer-1"), untrusted: await untrusted() };
          await append(what, metadata);
          await callUnary(
            receiver,
            WriterService,
            "flushKey",
            create(FlushKeyRequestSchema, { keyspace: "ks", key }),
            {},
            metadata,
          );
          const answers = await session(
            shards[0]?.address as string,
            [oneItem(0, "ks", key as string, `${what} (session)`)],
            metadata,
          );
          assert.equal(answers[0]?.error, undefined);
          assert.equal(
            (await appends("writer-0")) - before[0],
            0,
            `${what}: writer-0 does not own the key and served nothing`,
          );
          assert.equal((await appends("writer-1")) - before[1], 2, `${what}: the owner served both`);
          assert.equal((await untrusted()) - before.untrusted, 3, `${what}: each call counted as untrusted`);
        }
        // A Trim marked without proof reaches the owner too (the only shard that may trim the key).
        const trimmed = await callUnary(
          receiver,
          WriterService,
          "trim",
          create(TrimRequestSchema, { keyspace: "ks", key, beforeOffset: 1n }),
          {},
          marked("writer-0"),
        );
        assert.equal(trimmed.firstOffset, 1n);

        // A peer (the right secret) is served where its call lands, whatever the shard list says.
        const before = { 0: await appends("writer-0"), 1: await appends("writer-1") };
        await append("peer", marked("writer-2", SECRET));
        const answers = await session(
          shards[0]?.address as string,
          [oneItem(0, "ks", key as string, "peer (session)")],
          marked("writer-2", SECRET),
        );
        assert.equal(answers[0]?.error, undefined);
        assert.equal((await appends("writer-0")) - before[0], 2, "a peer's forwarded calls are served where they land");
        assert.equal((await appends("writer-1")) - before[1], 0);
        assert.deepEqual((await collect(client.items("ks", key as string))).slice(-2), ["peer", "peer (session)"]);
      } finally {
        receiver.close();
      }
    });

    it("refuses a call shards without proof forward in a loop, and with the secret serves it where it lands", async () => {
      // writer-x lists a shard "writer-9" at writer-y's own address, so for some keys each
      // thinks the other owns them.
      const [x, y] = await Promise.all([freePort(), freePort()]);
      const shardX = { name: "writer-x", address: `127.0.0.1:${x}` };
      const shardY = { name: "writer-y", address: `127.0.0.1:${y}` };
      const listX = [shardX, shardY];
      const listY = [shardX, shardY, { name: "writer-9", address: shardX.address }];
      const ringX = new ShardRing(listX);
      const ringY = new ShardRing(listY);
      let key = "";
      for (let i = 0; !key; i++) {
        if (
          ringX.ownerOf("ks", `loop-${i}`).name === "writer-y" &&
          ringY.ownerOf("ks", `loop-${i}`).name === "writer-9"
        )
          key = `loop-${i}`;
      }
      const start = (secret: string | undefined) =>
        Promise.all([
          startWriterShard(
            {
              store: url,
              name: "writer-x",
              shards: listX,
              server: { listen: shardX.address },
              forwardingSecret: secret,
            },
            logger,
          ),
          startWriterShard(
            {
              store: url,
              name: "writer-y",
              shards: listY,
              server: { listen: shardY.address },
              forwardingSecret: secret,
            },
            logger,
          ),
        ]);
      const appendTo = async (value: string) => {
        const c = new Client(shardX.address, credentials.createInsecure());
        try {
          return await callUnary(
            c,
            WriterService,
            "append",
            create(AppendRequestSchema, {
              keyspace: "ks",
              key,
              insertions: [create(InsertionSchema, { value: Buffer.from(value) })],
            }),
          );
        } finally {
          c.close();
        }
      };

      let pair = await start(undefined);
      extra.push(...pair);
      await assert.rejects(appendTo("looped"), (e: ServiceError) => {
        assert.equal(e.code, status.UNAVAILABLE);
        assert.match(e.details, /writer-x -> writer-y -> writer-x .*loop/);
        return true;
      });
      const answers = await session(shardX.address, [oneItem(0, "ks", key, "looped (session)")]);
      assert.equal(answers[0]?.error?.code, status.UNAVAILABLE);
      assert.equal(answers[0]?.error?.retryable, true);
      assert.match(answers[0]?.error?.message ?? "", /loop/);
      assert.equal(await client.keyMetadata("ks", key), undefined, "nothing stored");
      await Promise.all(pair.map((w) => w.close()));

      pair = await start(SECRET);
      extra.push(...pair);
      const ySeen = () => metricValue((pair[1] as RunningWriterShard).metrics.registry, "klstore_appends_total");
      const before = await ySeen();
      await appendTo("served by writer-y");
      const served = await session(shardX.address, [oneItem(0, "ks", key, "served by writer-y (session)")]);
      assert.equal(served[0]?.error, undefined);
      assert.equal((await ySeen()) - before, 2, "writer-y serves its peer's forwarded calls");
      assert.deepEqual(await collect(client.items("ks", key)), ["served by writer-y", "served by writer-y (session)"]);
    });
  });
}
