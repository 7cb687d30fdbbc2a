// Lost S3 responses: the server stored a write, its answer never reached the writer, the SDK
// sent the write again. A create-only PUT then answers 412 for the object its own first
// attempt stored. Every conditional write of the protocol must still give a truthful
// answer: stored means stored once, ABORTED (Fenced) means nothing stored, and when the
// writer cannot know, UNAVAILABLE. Each test checks that the proxy really dropped an answer
// and that the retry really met a 412, so none passes without the fault happening.
// Needs: SeaweedFS (KLSTORE_TEST_S3_ENDPOINT); the filesystem has no lost responses.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Fenced, KeyspaceAlreadyExists } from "../src/errors.ts";
import { itemCount, KeyspaceLayout, parseDataObjectName } from "../src/format/layout.ts";
import { LogLane, writeFence } from "../src/log/log-lane.ts";
import { StoreReader } from "../src/reader/store-reader.ts";
import type { S3Store } from "../src/storage/s3.ts";
import { StoreWriter } from "../src/writer/store-writer.ts";
import { ensureBucket, S3_ENDPOINT, testS3Store } from "./backends.ts";
import { type DropRule, type LostResponseProxy, startLostResponseProxy } from "./lost-response-proxy.ts";
import { readKey } from "./read-key.ts";

const segmentOf = (objectKey: string) => objectKey.slice(objectKey.lastIndexOf("/") + 1);
const isClaim = (objectKey: string) => segmentOf(objectKey).startsWith("claim_");
const dataName = (objectKey: string) => parseDataObjectName(segmentOf(objectKey));
/** A data object of several items: a compaction's merge (or a trim's suffix of one). */
const isMerged = (objectKey: string) => {
  const name = dataName(objectKey);
  return name !== undefined && itemCount(name) > 1n;
};

describe("lost responses to conditional writes (s3)", { skip: S3_ENDPOINT ? false : "needs SeaweedFS" }, () => {
  let proxy: LostResponseProxy;
  before(async () => {
    await ensureBucket();
    proxy = await startLostResponseProxy(S3_ENDPOINT ?? "");
  });
  after(() => proxy.close());

  /** A store in a fresh prefix whose every request goes through the proxy. */
  function openStore(): { store: S3Store; prefix: string } {
    const prefix = `lost-${randomUUID()}/`;
    return { store: testS3Store(prefix, proxy.endpoint), prefix };
  }

  /** Drops the answer of the next request matching `rule` in `prefix`, and asserts it happened. */
  async function withDroppedAnswer<T>(prefix: string, rule: DropRule, run: () => Promise<T>): Promise<T> {
    const from = proxy.requests.length;
    const inPrefix = (k: string) => k.startsWith(prefix) && (rule.objectKey?.(k) ?? true);
    proxy.drop({ ...rule, objectKey: inPrefix });
    try {
      return await run();
    } finally {
      proxy.clearRules();
      const seen = proxy.requests.slice(from).filter((r) => r.objectKey.startsWith(prefix));
      const dropped = seen.findIndex((r) => r.dropped);
      assert.ok(dropped >= 0, "the proxy dropped an answer");
      const lost = seen[dropped];
      assert.equal(lost?.status, 200, "the dropped request was stored");
      if (lost?.conditional) {
        const retry = seen.slice(dropped + 1).find((r) => r.objectKey === lost.objectKey && r.method === "PUT");
        assert.equal(retry?.status, 412, "the SDK's retry of it met the object its first attempt stored");
      }
    }
  }

  async function itemsOf(store: S3Store, prefix: string) {
    const items = await readKey(new StoreReader({ store, prefix }), { maxSize: 7 });
    return items.map((i) => `${i.offset}:${Buffer.from(i.value)}`);
  }

  it("claim: an append without nonce is stored once and answered with its offset", async () => {
    const { store, prefix } = openStore();
    const writer = new StoreWriter({ store, prefix });
    await writer.createKeyspace("ks");
    await writer.appendList("ks", "k", [{ value: Buffer.from("a") }]);
    const outcomes = await withDroppedAnswer(prefix, { method: "PUT", objectKey: isClaim }, () =>
      writer.appendList("ks", "k", [{ value: Buffer.from("b") }]),
    );
    assert.deepEqual(
      outcomes.map((o) => o.kind === "appended" && o.offset),
      [1n],
    );
    await writer.appendList("ks", "k", [{ value: Buffer.from("c") }]);
    assert.deepEqual(await itemsOf(store, prefix), ["0:a", "1:b", "2:c"]);
    await store.close();
  });

  it("data: an append without nonce is stored once and answered with its offset", async () => {
    const { store, prefix } = openStore();
    const writer = new StoreWriter({ store, prefix });
    await writer.createKeyspace("ks");
    const outcomes = await withDroppedAnswer(prefix, { method: "PUT", objectKey: (k) => !!dataName(k) }, () =>
      writer.appendList("ks", "k", [{ value: Buffer.from("a") }, { value: Buffer.from("b") }]),
    );
    assert.deepEqual(
      outcomes.map((o) => o.kind === "appended" && o.offset),
      [0n, 1n],
    );
    await writer.appendList("ks", "k", [{ value: Buffer.from("c") }]);
    assert.deepEqual(await itemsOf(store, prefix), ["0:a", "1:b", "2:c"]);
    await store.close();
  });

  it("data with nonces: the append is stored, not reported a duplicate on its retry", async () => {
    const { store, prefix } = openStore();
    const writer = new StoreWriter({ store, prefix });
    await writer.createKeyspace("ks");
    const outcomes = await withDroppedAnswer(prefix, { method: "PUT", objectKey: (k) => !!dataName(k) }, () =>
      writer.appendList("ks", "k", [{ value: Buffer.from("a"), nonce: 7n }]),
    );
    assert.deepEqual(
      outcomes.map((o) => o.kind),
      ["appended"],
    );
    assert.deepEqual(await itemsOf(store, prefix), ["0:a"]);
    await store.close();
  });

  it("keyspace config: creating a keyspace answers created, not ALREADY_EXISTS", async () => {
    const { store, prefix } = openStore();
    const writer = new StoreWriter({ store, prefix });
    const layout = new KeyspaceLayout(prefix, "ks");
    const settings = await withDroppedAnswer(prefix, { method: "PUT", objectKey: (k) => k === layout.configKey }, () =>
      writer.createKeyspace("ks", { compression: "zstd" }),
    );
    assert.equal(settings.compression, "zstd");
    await assert.rejects(new StoreWriter({ store, prefix }).createKeyspace("ks"), KeyspaceAlreadyExists);
    await store.close();
  });

  it("seal: a recovery that seals an orphaned claim takes its offset over once", async () => {
    const { store, prefix } = openStore();
    const writer = new StoreWriter({ store, prefix });
    await writer.createKeyspace("ks");
    await writer.appendList("ks", "k", [{ value: Buffer.from("a") }]);
    // A writer that dies between its claim and its data write leaves a claim at offset 1.
    let orphaned: string | undefined;
    const dying = new StoreWriter({
      store: {
        description: store.description,
        get: (k) => store.get(k),
        list: (p, o) => store.list(p, o),
        listFolders: (p) => store.listFolders(p),
        delete: (keys) => store.delete(keys),
        close: async () => {},
        put: async (k, body, options) => {
          if (dataName(k)) {
            orphaned = k;
            throw new Error("killed before its data write");
          }
          return store.put(k, body, options);
        },
      },
      prefix,
    });
    await assert.rejects(dying.appendList("ks", "k", [{ value: Buffer.from("lost") }]), /killed/);
    assert.ok(orphaned);
    const recovering = new StoreWriter({ store, prefix });
    const outcomes = await withDroppedAnswer(prefix, { method: "PUT", objectKey: (k) => k === orphaned }, () =>
      recovering.appendList("ks", "k", [{ value: Buffer.from("b") }]),
    );
    assert.deepEqual(
      outcomes.map((o) => o.kind === "appended" && o.offset),
      [1n],
    );
    assert.equal((await store.get(orphaned))?.body.byteLength, 0, "the orphan is sealed");
    assert.deepEqual(await itemsOf(store, prefix), ["0:a", "1:b"]);
    await store.close();
  });

  it("merge: a compaction whose output's answer is lost completes once", async () => {
    const { store, prefix } = openStore();
    const writer = new StoreWriter({ store, prefix, config: { compactObjectsThreshold: 3 } });
    let compactions = 0;
    writer.observer = { compacted: () => compactions++ };
    writer.onCompactionError = (_layout, err) => assert.fail(`compaction failed: ${(err as Error).message}`);
    await writer.createKeyspace("ks");
    await writer.appendList("ks", "k", [{ value: Buffer.from("a") }]);
    await writer.appendList("ks", "k", [{ value: Buffer.from("b") }]);
    await withDroppedAnswer(prefix, { method: "PUT", conditional: true, objectKey: isMerged }, () =>
      writer.appendList("ks", "k", [{ value: Buffer.from("c") }]),
    );
    assert.equal(compactions, 1);
    await writer.appendList("ks", "k", [{ value: Buffer.from("d") }]);
    assert.deepEqual(await itemsOf(store, prefix), ["0:a", "1:b", "2:c", "3:d"]);
    await store.close();
  });

  it("trim: a kept suffix, the end marker and the watermark of trims that empty a key, whose answers are lost", async () => {
    const { store, prefix } = openStore();
    const writer = new StoreWriter({ store, prefix });
    await writer.createKeyspace("ks");
    await writer.appendList(
      "ks",
      "k",
      ["a", "b", "c", "d"].map((v) => ({ value: Buffer.from(v) })),
    );
    const cut = await withDroppedAnswer(prefix, { method: "PUT", conditional: true, objectKey: isMerged }, () =>
      writer.trim("ks", "k", 1n),
    );
    assert.equal(cut.firstOffset, 1n);
    assert.deepEqual(await itemsOf(store, prefix), ["1:b", "2:c", "3:d"]);
    // Emptying it writes an end marker (a data name holding no items, docs/format.md, "Trim").
    const emptied = await withDroppedAnswer(
      prefix,
      { method: "PUT", conditional: true, objectKey: (k) => dataName(k)?.sizeBytes === 0n },
      () => writer.trim("ks", "k", 4n),
    );
    assert.equal(emptied.firstOffset, 4n);
    const outcomes = await new StoreWriter({ store, prefix }).appendList("ks", "k", [{ value: Buffer.from("e") }]);
    assert.deepEqual(
      outcomes.map((o) => o.kind === "appended" && o.offset),
      [4n],
    );
    assert.deepEqual(await itemsOf(store, prefix), ["4:e"]);
    // A key whose only item was offset 0 gets no marker, but a watermark at 0, created only if none exists.
    await writer.appendList("ks", "one", [{ value: Buffer.from("x") }]);
    const layout = new KeyspaceLayout(prefix, "ks").key("one");
    const one = await withDroppedAnswer(
      prefix,
      { method: "PUT", conditional: true, objectKey: (k) => k === layout.watermarkKey },
      () => writer.trim("ks", "one", 1n),
    );
    assert.equal(one.firstOffset, 1n);
    await store.close();
  });

  it("log segments and fences: a lane's write and a takeover fence whose answers are lost", async () => {
    const { store, prefix } = openStore();
    const log = { writer: "writer-0", lane: 0 };
    const clock = () => 1n;
    const lane = new LogLane({ store, prefix, log, clock });
    const isSegment = (k: string) => k.includes("/.logs/");
    assert.equal(await withDroppedAnswer(prefix, { method: "PUT", objectKey: isSegment }, () => lane.open()), 0n);
    const written = await withDroppedAnswer(prefix, { method: "PUT", objectKey: isSegment }, () =>
      lane.write({ kind: "data" }),
    );
    assert.equal(written.kind === "stored" && written.seq, 1n);
    const fenced = [{ slot: 1, by: { writer: "writer-1", lane: 0 }, recordVersion: 1n }];
    const fence = await withDroppedAnswer(prefix, { method: "PUT", objectKey: isSegment }, () =>
      writeFence(store, prefix, log, 0n, { kind: "takeover-fence", fenced, createdMillis: 2n }),
    );
    assert.equal(fence, 2n);
    assert.deepEqual(await lane.write({ kind: "data" }), { kind: "fenced", fenced });
    await store.close();
  });

  it("answers truthfully whichever single write of a run loses its answer", async (t) => {
    // A run of appends (half with nonces), compactions and a trim; for every write of it in
    // turn, that write's answer is dropped. No call may fail: the writer is alone, so a
    // Fenced answer would claim "not stored" for a write of its own.
    const run = async (writer: StoreWriter) => {
      const acked: string[] = [];
      for (let n = 0; n < 8; n++) {
        const value = Buffer.from(`v${n}`);
        const [outcome] = await writer.appendList("ks", "k", [n % 2 ? { value, nonce: BigInt(n) } : { value }]);
        assert.equal(outcome?.kind, "appended", `append ${n}`);
        if (outcome?.kind === "appended") acked.push(`${outcome.offset}:v${n}`);
      }
      await writer.trim("ks", "k", 3n);
      return acked.slice(3);
    };
    const config = { compactObjectsThreshold: 3, compactItemsThreshold: 5 };
    let writes = 0;
    {
      const { store, prefix } = openStore();
      await new StoreWriter({ store, prefix }).createKeyspace("ks");
      const from = proxy.requests.length;
      await run(new StoreWriter({ store, prefix, config }));
      // Deletes are POSTs to the bucket; this test is alone on the proxy while it runs.
      writes = proxy.requests.slice(from).filter((r) => r.method === "PUT" || r.method === "POST").length;
      await store.close();
    }
    assert.ok(writes >= 20, `claims, data, merges, watermarks, change log, trim: ${writes} writes`);
    for (let k = 0; k < writes; k++) {
      const { store, prefix } = openStore();
      await new StoreWriter({ store, prefix }).createKeyspace("ks");
      const writer = new StoreWriter({ store, prefix, config });
      writer.onCompactionError = (_layout, err) => assert.fail(`write ${k}: compaction failed: ${String(err)}`);
      let seen = 0;
      const kth = () => seen++ === k; // asked once per PUT or POST, in arrival order
      proxy.drop({ method: "PUT", objectKey: kth });
      proxy.drop({ method: "POST", objectKey: kth });
      try {
        const from = proxy.requests.length;
        const acked = await run(writer).catch((err: unknown) => {
          assert.ok(!(err instanceof Fenced), `write ${k}: a lost answer must not be reported as fenced`);
          throw err;
        });
        assert.ok(
          proxy.requests.slice(from).some((r) => r.dropped),
          `write ${k}: an answer was dropped`,
        );
        assert.deepEqual(await itemsOf(store, prefix), acked, `write ${k}`);
      } finally {
        proxy.clearRules();
        await store.close();
      }
    }
    t.diagnostic(`${writes} writes per run, each one's answer dropped in turn`);
  });
});
