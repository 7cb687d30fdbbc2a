// Every bad request to every RPC, over the wire as raw protobuf bytes (what a client in
// any language can send, including what the generated encoders refuse to write), gets
// the right status code and a BadRequest naming the field at fault, and stores nothing.
// Appends, flushes and trims go to both writer shards, the key's owner and a shard that
// forwards to it: both must answer alike. AppendSession answers bad requests in-band.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { Client, credentials, status } from "@grpc/grpc-js";
import { AppendSessionResponseSchema, ReadPageResponseSchema } from "@klstore/proto";
import { type RunningReader, startReader } from "@klstore/reader-service";
import { createLogger } from "@klstore/service-runtime";
import { type RunningWriterShard, startWriterShard } from "@klstore/writer-service";
import { freePort } from "../../../e2e/support/processes.ts";
import { backends } from "../../core/test/backends.ts";
import { KlstoreClient } from "../src/klstore-client.ts";
import { badInputCases, DAY_MILLIS, insertion, type MatrixContext, U128 } from "./bad-input-cases.ts";
import { type Answer, bidiRaw, callRaw, NOT_UTF8, raw, str, streamRaw, uint } from "./wire.ts";

const logger = createLogger("test", "silent");
const LIMITS = { maxValueBytes: 64, maxItemsPerAppend: 8, maxPageItems: 1000 };

/** An answer as compared across shards: a refused timestamp's message quotes the shard's clock. */
const summary = (a: Answer) => ({
  code: status[a.code],
  field: a.field,
  details: a.details.replace(/writer's clock \(\d+\)/, "writer's clock (now)"),
});

for (const backend of backends()) {
  describe(`bad input over the wire (${backend.name})`, () => {
    let writers: RunningWriterShard[] = [];
    let reader: RunningReader;
    let shardClients: Client[] = [];
    let readerClient: Client;
    let client: KlstoreClient;
    let cleanup: () => Promise<void>;
    let ctx: MatrixContext;

    before(async () => {
      const opened = await backend.open();
      cleanup = opened.cleanup;
      const names = ["writer-0", "writer-1"];
      const ports = await Promise.all(names.map(() => freePort()));
      const shards = names.map((name, i) => ({ name, address: `127.0.0.1:${ports[i]}` }));
      writers = await Promise.all(
        shards.map((s) =>
          startWriterShard(
            {
              store: opened.url,
              name: s.name,
              shards,
              server: { listen: s.address },
              writer: { maxValueBytes: LIMITS.maxValueBytes, maxItemsPerAppend: LIMITS.maxItemsPerAppend },
            },
            logger,
          ),
        ),
      );
      reader = await startReader(
        { store: opened.url, server: { listen: "127.0.0.1:0" }, reader: { maxPageItems: LIMITS.maxPageItems } },
        logger,
      );
      shardClients = shards.map((s) => new Client(s.address, credentials.createInsecure()));
      readerClient = new Client(reader.address, credentials.createInsecure());
      client = new KlstoreClient({ writers: shards, reader: reader.address });
      await client.createKeyspace("ks");
      await client.append("ks", "k", [{ value: "a" }, { value: "b" }, { value: "c" }, { value: "d" }]);
      ctx = { keyspace: "ks", key: "k", now: BigInt(Date.now()), ...LIMITS };
    });

    after(async () => {
      client?.close();
      for (const c of [...shardClients, readerClient]) c?.close();
      await Promise.all([...writers.map((w) => w.close()), reader?.close()]);
      await cleanup?.();
    });

    it("answers each bad request of every RPC with its code and the field at fault, on every shard alike", async () => {
      const cases = badInputCases(ctx);
      const wrong: string[] = [];
      for (const c of cases) {
        const send = (to: Client) => (c.streaming ? streamRaw(to, c.path, c.request) : callRaw(to, c.path, c.request));
        const targets = c.path.includes("WriterService") ? shardClients : [readerClient];
        const answers = await Promise.all(targets.map(send));
        const [first] = answers.map(summary);
        for (const [i, a] of answers.map(summary).entries()) {
          if (a.code !== status[c.code] || a.field !== c.field) {
            wrong.push(`${c.name} (to ${targets.length > 1 ? `shard ${i}` : "the reader"}): got ${JSON.stringify(a)}`);
          } else if (JSON.stringify(a) !== JSON.stringify(first)) {
            wrong.push(`${c.name}: shard ${i} answered ${JSON.stringify(a)}, shard 0 ${JSON.stringify(first)}`);
          }
        }
        if (c.code !== status.NOT_FOUND && c.code !== status.ALREADY_EXISTS) {
          // A refused stream sends nothing before its status.
          for (const a of answers) assert.equal(a.messages.length, 0, c.name);
        }
      }
      assert.deepEqual(wrong, [], `${wrong.length} of ${cases.length} cases answered wrongly`);
      // Nothing of any refused append was stored.
      const meta = await client.keyMetadata("ks", "k");
      assert.equal(meta?.nextOffset, 4n);
      assert.equal(meta?.nextNonce, 0n);
      assert.ok((meta?.maxTimestampMillis ?? 0n) <= BigInt(Date.now()), "no timestamp from the future stuck");
    });

    it("answers bad requests on an AppendSession in-band, in their place, and goes on", async () => {
      const requests = [
        raw(uint(1, 1), str(2, "ks"), str(3, "s"), insertion(4, "first")),
        raw(uint(1, 2), str(2, "ks"), str(3, NOT_UTF8), insertion(4, "x")),
        raw(uint(1, 3), str(2, "ks"), str(3, "s")),
        raw(uint(1, 4), str(2, "ks"), str(3, "s"), insertion(4, "x", U128 - 2n)),
        raw(uint(1, 5), str(2, "ks"), str(3, "s"), insertion(4, "x", undefined, BigInt(Date.now()) + 2n * DAY_MILLIS)),
        raw(uint(1, 6), str(2, "nope"), str(3, "s"), insertion(4, "x")),
        new Uint8Array([0x07]), // not protobuf: no sequence to echo
        raw(uint(1, 8), str(2, "ks"), str(3, "s"), insertion(4, "last")),
      ];
      for (const [i, shard] of shardClients.entries()) {
        const answer = await bidiRaw(shard, "/klstore.v1.WriterService/AppendSession", requests);
        assert.equal(answer.code, status.OK, `shard ${i}: the stream ends cleanly (${answer.details})`);
        const responses = answer.messages.map((m) => fromBinary(AppendSessionResponseSchema, m));
        assert.deepEqual(
          responses.map((r) => [r.sequence, r.error?.code ?? 0]),
          [
            [1n, 0],
            [2n, status.INVALID_ARGUMENT],
            [3n, status.INVALID_ARGUMENT],
            [4n, status.INVALID_ARGUMENT],
            [5n, status.INVALID_ARGUMENT],
            [6n, status.NOT_FOUND],
            [0n, status.INVALID_ARGUMENT],
            [8n, 0],
          ],
          `shard ${i}`,
        );
        const messages = responses.map((r) => r.error?.message ?? "");
        assert.match(messages[1] as string, /^invalid key: not valid UTF-8/);
        assert.match(messages[2] as string, /^invalid insertions:/);
        assert.match(messages[3] as string, /^invalid insertions\[0\]\.nonce:/);
        assert.match(messages[4] as string, /^invalid insertions\[0\]\.timestamp_millis:/);
        assert.match(messages[6] as string, /^invalid request:/);
        assert.ok(responses.every((r) => r.error === undefined || !r.error.retryable));
      }
      const meta = await client.keyMetadata("ks", "s");
      assert.equal(meta?.nextOffset, 4n, "the good requests of both sessions, and nothing else");
    });

    it("ends a read on its last page when the page size divides the list", async () => {
      const continuations: string[] = [];
      let continuation = "";
      do {
        const answer = await callRaw(
          readerClient,
          "/klstore.v1.ReaderService/ReadPage",
          raw(str(1, "ks"), str(2, "k"), uint(4, 2), ...(continuation ? [str(6, continuation)] : [])),
        );
        assert.equal(answer.code, status.OK, answer.details);
        const page = fromBinary(ReadPageResponseSchema, answer.messages[0] as Buffer);
        assert.equal(page.items.length, 2);
        continuation = page.continuation;
        continuations.push(continuation);
      } while (continuation && continuations.length < 5);
      assert.equal(continuations.length, 2, "4 items in pages of 2: two pages");
      assert.ok(continuations[0], "the first page says more follow");
    });
  });
}
