// A writer process whose S3 answers get lost: `klstore serve writer` reaches SeaweedFS
// through a proxy that drops the answer of a data object's PUT after the server stored it.
// The CLI's one append of one value (no nonce) must store it once and say so; a nonced
// append through the client must be answered "appended", not "duplicate" (issue 23).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { KlstoreClient } from "@klstore/client";
import { parseDataObjectName } from "../packages/core/src/format/layout.ts";
import { type LostResponseProxy, startLostResponseProxy } from "../packages/core/test/lost-response-proxy.ts";
import {
  ensureBucket,
  freePort,
  runCli,
  S3_ENDPOINT,
  type ServedProcess,
  serve,
  stop,
  writeConfig,
} from "./support/processes.ts";

const isDataObject = (key: string) => parseDataObjectName(key.slice(key.lastIndexOf("/") + 1)) !== undefined;

describe("a writer process whose S3 answers are lost", { skip: !S3_ENDPOINT && "needs S3" }, () => {
  let proxy: LostResponseProxy;
  let writer: ServedProcess;
  let reader: ServedProcess;
  let prefix: string;

  before(async () => {
    await ensureBucket();
    proxy = await startLostResponseProxy(S3_ENDPOINT ?? "");
    const config = writeConfig("", proxy.endpoint);
    prefix = config.prefix;
    const address = `127.0.0.1:${await freePort()}`;
    writer = await serve("writer", config.file, [
      "writer.name=writer-0",
      `writer.listen=${address}`,
      `writer.shards=writer-0=${address}`,
    ]);
    reader = await serve("reader", config.file, ["reader.listen=127.0.0.1:0"]);
    const created = await runCli(["--writer", writer.address, "keyspace", "create", "lost"]);
    assert.equal(created.code, 0, created.stderr);
  });
  after(async () => {
    await Promise.all([writer, reader].filter(Boolean).map(stop));
    await proxy?.close();
  });

  /** Drops the next data object PUT's answer in this test's prefix; returns whether it was dropped. */
  async function dropNextDataAnswer(run: () => Promise<void>): Promise<void> {
    const from = proxy.requests.length;
    proxy.drop({ method: "PUT", objectKey: (k) => k.startsWith(prefix) && isDataObject(k) });
    await run();
    proxy.clearRules();
    const seen = proxy.requests.slice(from);
    const lost = seen.find((r) => r.dropped);
    assert.ok(lost, "the proxy dropped a data object's answer");
    assert.ok(
      seen.some((r) => r.objectKey === lost.objectKey && !r.dropped && r.status === 412),
      "the retry met the stored object",
    );
  }

  it("klstore append of one value without nonce stores it once", async () => {
    await dropNextDataAnswer(async () => {
      const appended = await runCli(["--writer", writer.address, "append", "lost", "cli-key", "only-once"]);
      assert.equal(appended.code, 0, appended.stderr);
    });
    const read = await runCli(["--reader", reader.address, "read", "lost", "cli-key"]);
    assert.equal(read.code, 0, read.stderr);
    const values = read.stdout
      .trim()
      .split("\n")
      .map((line) => (JSON.parse(line) as { value: string }).value);
    assert.deepEqual(values, ["only-once"]);
  });

  it("a nonced append through the client is answered appended, and stored once", async () => {
    const client = new KlstoreClient({
      writers: [{ name: "writer-0", address: writer.address }],
      reader: reader.address,
    });
    try {
      let outcomes: Awaited<ReturnType<KlstoreClient["append"]>> = [];
      await dropNextDataAnswer(async () => {
        outcomes = await client.append("lost", "client-key", [{ value: Buffer.from("x"), nonce: 1n }]);
      });
      assert.deepEqual(
        outcomes.map((o) => o.kind),
        ["appended"],
      );
      const items = [];
      for await (const item of client.items("lost", "client-key")) items.push(Buffer.from(item.value).toString());
      assert.deepEqual(items, ["x"]);
    } finally {
      client.close();
    }
  });
});
