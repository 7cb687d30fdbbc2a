// AppendSession against writer shard processes (`klstore serve`) on SeaweedFS whose owner
// of the keys stalls (SIGSTOP) or dies (SIGKILL) mid-session: a cancel starts nothing that
// was not yet sent, and a lost owner's unanswered requests are answered UNAVAILABLE while
// the session goes on.

import assert from "node:assert/strict";
import { once } from "node:events";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Client, credentials, status } from "@grpc/grpc-js";
import { KlstoreClient } from "@klstore/client";
import {
  AppendSessionRequestSchema,
  type AppendSessionResponse,
  CHANNEL_OPTIONS,
  callBidiStream,
  packInsertions,
  WriterService,
} from "@klstore/proto";
import { ShardRing } from "@klstore/sharding";
import { type Cluster, startCluster } from "./support/cluster.ts";
import { ensureBucket, S3_ENDPOINT, scrape, writeConfig } from "./support/processes.ts";

/** writer-0's window: requests it reads from one session before waiting for answers. */
const WINDOW = 64;
const KEYSPACE = "sessions";

/** Polls `condition`; the deadline is generous, as a loaded machine is slow, not wrong. */
async function until(what: string, condition: () => Promise<boolean>, timeoutMillis = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMillis;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

describe("AppendSession through a shard whose owner stalls or dies", { skip: !S3_ENDPOINT && "needs S3" }, () => {
  const run = async (
    test: (cluster: Cluster, client: KlstoreClient, ownedBy: (o: string, n: number) => string[]) => Promise<void>,
    sets: readonly string[] = [],
  ) => {
    await ensureBucket();
    const cluster = await startCluster(writeConfig().file, 2, {
      metrics: true,
      sets: [`writer.session_max_in_flight=${WINDOW}`, ...sets],
    });
    const client = new KlstoreClient({ writers: cluster.shards, reader: cluster.reader.address, maxAttempts: 1 });
    const ring = new ShardRing(cluster.shards);
    const ownedBy = (owner: string, count: number) => {
      const keys: string[] = [];
      for (let i = 0; keys.length < count; i++) if (ring.ownerOf(KEYSPACE, `k${i}`).name === owner) keys.push(`k${i}`);
      return keys;
    };
    try {
      await client.createKeyspace(KEYSPACE);
      await test(cluster, client, ownedBy);
    } finally {
      // A stopped process cannot act on SIGTERM.
      for (const w of cluster.writers) w.child.kill("SIGCONT");
      client.close();
      await cluster.stop();
    }
  };
  const metric = (cluster: Cluster, shard: number, name: string, labels?: Record<string, string>) =>
    scrape(cluster.writers[shard]?.metrics as string, name, labels);

  it("starts none of a cancelled session's requests it had not yet sent to their owner", async () => {
    await run(async (cluster, client, ownedBy) => {
      const keys = ownedBy("writer-1", 4);
      const viaZero = new KlstoreClient({
        writers: `only=${cluster.writers[0]?.address}`,
        reader: cluster.reader.address,
      });
      // writer-0 connects to writer-1 (and writer-1 loads the keyspace) before writer-1 stalls.
      await viaZero.append(KEYSPACE, keys[0] as string, [{ value: "warm-up" }]);
      viaZero.close();
      const forwardedBefore = await metric(cluster, 0, "klstore_forwarded_requests_total");
      cluster.writers[1]?.child.kill("SIGSTOP");

      const connection = new Client(
        cluster.writers[0]?.address as string,
        credentials.createInsecure(),
        CHANNEL_OPTIONS,
      );
      const stream = callBidiStream(connection, WriterService, "appendSession");
      const answered: AppendSessionResponse[] = [];
      const reading = (async () => {
        for await (const r of stream) answered.push(r);
      })().catch(() => {});
      // 512 KiB a request: writer-1's HTTP/2 window takes a handful before writer-0 must
      // wait, so most of writer-0's window is read but never sent.
      const value = Buffer.alloc(512 * 1024, 0x61);
      let cancelled = false;
      const writing = (async () => {
        for (let i = 0; i < 4 * WINDOW && !cancelled; i++) {
          const request = create(AppendSessionRequestSchema, {
            sequence: BigInt(i),
            keyspace: KEYSPACE,
            key: keys[i % keys.length] as string,
            packedInsertions: packInsertions([{ value }]),
          });
          if (!stream.write(request)) await Promise.race([once(stream, "drain"), once(stream, "close")]);
        }
      })().catch(() => {});
      await until(
        "writer-0 to hold a full window",
        async () => (await metric(cluster, 0, "klstore_session_requests")) >= WINDOW,
      );
      const sentByCancel = (await metric(cluster, 0, "klstore_forwarded_requests_total")) - forwardedBefore;
      cancelled = true;
      stream.cancel();
      await Promise.all([reading, writing]);
      connection.close();
      // Not sent: dropped at once. Sent: failed here (the stream to writer-1 is cancelled too).
      await until(
        "writer-0 to settle its requests",
        async () => (await metric(cluster, 0, "klstore_session_requests")) === 0,
      );
      const sent = (await metric(cluster, 0, "klstore_forwarded_requests_total")) - forwardedBefore;
      assert.equal(sent, sentByCancel, "nothing is sent after the cancel");
      assert.ok(sent < WINDOW / 2, `${sent} of the ${WINDOW} requests read were sent to writer-1 before the cancel`);
      assert.deepEqual(answered, [], "writer-1 answered nothing while stopped");

      cluster.writers[1]?.child.kill("SIGCONT");
      // The cancel reached writer-1: its forwarded session ended CANCELLED.
      const sessionCancelled = { method: "/klstore.v1.WriterService/AppendSession", code: "CANCELLED" };
      await until(
        "writer-1 to see the forwarded session cancelled",
        async () => (await metric(cluster, 1, "klstore_grpc_calls_total", sessionCancelled)) >= 1,
      );
      await until(
        "writer-1 to settle what it read",
        async () => (await metric(cluster, 1, "klstore_session_requests")) === 0,
      );
      await client.flushAll();
      let stored = 0;
      for (const key of keys) stored += Number((await client.keyMetadata(KEYSPACE, key))?.nextOffset ?? 0n);
      stored -= 1; // the warm-up
      // What writer-1 had read when the cancel reached it may commit; nothing else can.
      assert.ok(stored <= sent, `${stored} stored of ${sent} sent (and ${4 * WINDOW} written by the client)`);
    });
  });

  it("answers UNAVAILABLE (outcome unknown) for the requests a dead owner left unanswered, and goes on", async () => {
    await run(async (cluster, client, ownedBy) => {
      const [theirs] = ownedBy("writer-1", 1);
      const [ours] = ownedBy("writer-0", 1);
      const viaZero = new KlstoreClient({
        writers: `only=${cluster.writers[0]?.address}`,
        reader: cluster.reader.address,
      });
      await viaZero.append(KEYSPACE, theirs as string, [{ value: "warm-up" }]);
      viaZero.close();
      cluster.writers[1]?.child.kill("SIGSTOP");

      const connection = new Client(
        cluster.writers[0]?.address as string,
        credentials.createInsecure(),
        CHANNEL_OPTIONS,
      );
      const stream = callBidiStream(connection, WriterService, "appendSession");
      const answers: AppendSessionResponse[] = [];
      const reading = (async () => {
        for await (const r of stream) answers.push(r);
      })();
      // Even sequences for writer-1's key, odd ones for writer-0's.
      const send = (from: number, count: number) => {
        for (let i = from; i < from + count; i++) {
          stream.write(
            create(AppendSessionRequestSchema, {
              sequence: BigInt(i),
              keyspace: KEYSPACE,
              key: (i % 2 === 0 ? theirs : ours) as string,
              packedInsertions: packInsertions([{ value: Buffer.from(`v${i}`), nonce: BigInt(i) }]),
            }),
          );
        }
      };
      send(0, 20);
      await until(
        "writer-0 to read them all",
        async () => (await metric(cluster, 0, "klstore_session_requests")) === 20,
      );
      cluster.writers[1]?.child.kill("SIGKILL");
      await cluster.writers[1]?.exited;
      await until("the first 20 answers", async () => answers.length === 20);
      send(20, 10); // writer-1's now go nowhere: refused at once, still in order
      stream.end();
      await reading;
      connection.close();

      assert.deepEqual(
        answers.map((a) => a.sequence),
        Array.from({ length: 30 }, (_, i) => BigInt(i)),
      );
      for (const [i, answer] of answers.entries()) {
        if (i % 2 === 1) {
          assert.equal(answer.error, undefined, `${i}: writer-0's own key is served`);
          continue;
        }
        assert.equal(answer.error?.code, status.UNAVAILABLE, `${i}: ${answer.error?.message}`);
        assert.equal(answer.error?.retryable, true);
        assert.match(answer.error?.message ?? "", /owner shard writer-1/);
      }
      assert.match(answers[0]?.error?.message ?? "", /outcome is unknown/);
      const page = await client.readPage(KEYSPACE, ours as string);
      assert.deepEqual(
        page.items.map((item) => Buffer.from(item.value).toString()),
        Array.from({ length: 15 }, (_, j) => `v${2 * j + 1}`),
      );
    });
  });

  it("answers UNAVAILABLE for the requests of an owner that hangs, once it misses its keepalive pings", async () => {
    await run(
      async (cluster, _client, ownedBy) => {
        const [theirs] = ownedBy("writer-1", 1);
        const [ours] = ownedBy("writer-0", 1);
        const viaZero = new KlstoreClient({
          writers: `only=${cluster.writers[0]?.address}`,
          reader: cluster.reader.address,
        });
        await viaZero.append(KEYSPACE, theirs as string, [{ value: "warm-up" }]);
        viaZero.close();
        cluster.writers[1]?.child.kill("SIGSTOP");
        const connection = new Client(
          cluster.writers[0]?.address as string,
          credentials.createInsecure(),
          CHANNEL_OPTIONS,
        );
        // No deadline: only writer-0's pings to writer-1 can end the wait.
        const stream = callBidiStream(connection, WriterService, "appendSession");
        const answers: AppendSessionResponse[] = [];
        const reading = (async () => {
          for await (const r of stream) answers.push(r);
        })();
        for (const [i, key] of [theirs, ours, theirs].entries()) {
          stream.write(
            create(AppendSessionRequestSchema, {
              sequence: BigInt(i),
              keyspace: KEYSPACE,
              key: key as string,
              packedInsertions: packInsertions([{ value: Buffer.from(`v${i}`) }]),
            }),
          );
        }
        stream.end();
        await reading;
        connection.close();
        assert.deepEqual(
          answers.map((a) => [a.sequence, a.error?.code ?? "ok"]),
          [
            [0n, status.UNAVAILABLE],
            [1n, "ok"],
            [2n, status.UNAVAILABLE],
          ],
        );
        assert.match(answers[0]?.error?.message ?? "", /owner shard writer-1 .*outcome is unknown/);
      },
      ["server.keepalive_time_millis=500", "server.keepalive_timeout_millis=1000"],
    );
  });
});
