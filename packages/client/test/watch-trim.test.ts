// WatchKeyspace, Trim and retention through the services: 3 writer shards appending to
// many keys while watchers follow the keyspace, one of them across a reader restart; the
// shared poller's storage cost; the cursor sent at once; bad cursors (bit flips of a real
// one, edits, huge writer lists, out-of-range numbers) refused; trims forwarded to the
// owner; the retention sweep.
// Needs: SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set (else the filesystem).

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { crc32 } from "node:zlib";
import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { type ServiceError, status } from "@grpc/grpc-js";
import { changesFolder, listChangeObjects, openStore } from "@klstore/core";
import { BadRequestSchema, StatusSchema } from "@klstore/proto";
import { type RunningReader, startReader } from "@klstore/reader-service";
import { createLogger } from "@klstore/service-runtime";
import { type RunningWriterShard, startWriterShard } from "@klstore/writer-service";
import { freePort } from "../../../e2e/support/processes.ts";
import { backends } from "../../core/test/backends.ts";
import { statusDetails } from "../src/index.ts";
import { type ClientKeyChange, KlstoreClient } from "../src/klstore-client.ts";

const logger = createLogger("test", "silent");
const backend = backends().at(-1); // SeaweedFS when it is running
const POLL_MILLIS = 50;

/** Collects a watch's changes in the background until stopped; remembers the last cursor. */
function watcher(client: KlstoreClient, keyspace: string, cursor?: string) {
  const abort = new AbortController();
  const changes: ClientKeyChange[] = [];
  let last = cursor;
  let messages = 0;
  const done = (async () => {
    for await (const message of client.watch(keyspace, { cursor, signal: abort.signal })) {
      messages++;
      changes.push(...message.changes);
      last = message.cursor;
    }
  })();
  return {
    changes,
    get cursor() {
      return last;
    },
    get messages() {
      return messages;
    },
    async stop() {
      abort.abort();
      await done.catch(() => {});
    },
    /** Waits until `ready` holds for the changes seen so far. */
    async until(ready: (changes: readonly ClientKeyChange[]) => boolean, what: string) {
      const deadline = Date.now() + 30_000;
      while (!ready(changes)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; have ${changes.length} changes`);
        await sleep(20);
      }
    },
    /** Waits for the stream's first message (sent once the watch is set up): later commits reach it. */
    async started() {
      await this.until(() => messages > 0, "the first message");
    },
  };
}

/** The field a refusal's BadRequest detail names (status.ts puts one in every INVALID_ARGUMENT). */
function badField(err: ServiceError): string | undefined {
  const bin = err.metadata?.get("grpc-status-details-bin")[0];
  if (!(bin instanceof Buffer)) return undefined;
  const details = fromBinary(StatusSchema, bin).details.map((d) => anyUnpack(d, BadRequestSchema));
  return details.find((d) => d !== undefined)?.fieldViolations[0]?.field;
}

/** A cursor laid out as docs/watch.md says and sealed for `folder`: what a client could forge. */
function sealedCursor(folder: string, from: bigint, writers: readonly (readonly [string, bigint])[]): string {
  const body = Buffer.alloc(11 + 16 * writers.length);
  body.writeUInt8(2, 0);
  body.writeBigInt64LE(from, 1);
  body.writeUInt16LE(writers.length & 0xffff, 9);
  writers.forEach(([id, seq], i) => {
    body.write(id, 11 + 16 * i, "hex");
    body.writeBigUInt64LE(seq, 19 + 16 * i);
  });
  const sealed = Buffer.concat([body, createHash("sha256").update(folder).digest().subarray(0, 8), Buffer.alloc(4)]);
  sealed.writeUInt32LE(crc32(sealed.subarray(0, sealed.length - 4)), sealed.length - 4);
  return sealed.toString("base64url");
}

function lastPerKey(changes: readonly ClientKeyChange[]): Map<string, bigint> {
  const last = new Map<string, bigint>();
  for (const c of changes) last.set(c.key, c.nextOffset);
  return last;
}

describe(`watch, trim and retention through the services (${backend?.name})`, () => {
  let writers: RunningWriterShard[] = [];
  let readers: RunningReader[] = [];
  let url: string;
  let cleanup: () => Promise<void>;
  let shards: { name: string; address: string }[];

  const startReaderHere = async () => {
    const reader = await startReader(
      { store: url, server: { listen: "127.0.0.1:0" }, followPollMillis: POLL_MILLIS },
      logger,
    );
    readers.push(reader);
    return reader;
  };
  const clientOf = (reader: RunningReader) => new KlstoreClient({ writers: shards, reader: reader.address });
  const batches = () =>
    Promise.all(
      writers.map(
        async (w) => (await w.metrics.registry.getSingleMetric("klstore_batches_total")?.get())?.values[0]?.value ?? 0,
      ),
    ).then((v) => v.reduce((a, b) => a + b, 0));

  before(async () => {
    const opened = await (backend as NonNullable<typeof backend>).open();
    url = opened.url;
    cleanup = opened.cleanup;
    const names = ["writer-0", "writer-1", "writer-2"];
    const ports = await Promise.all(names.map(() => freePort()));
    shards = names.map((name, i) => ({ name, address: `127.0.0.1:${ports[i]}` }));
    writers = await Promise.all(
      shards.map((s) =>
        startWriterShard(
          { store: url, name: s.name, shards, server: { listen: s.address }, retentionIntervalMillis: 0 },
          logger,
        ),
      ),
    );
  });

  after(async () => {
    await Promise.all([...readers, ...writers].map((p) => p.close()));
    await cleanup();
  });

  it("reports every commit of every key once, in commit order per key, across a reader restart", async () => {
    const first = await startReaderHere();
    const client = clientOf(first);
    await client.createKeyspace("watched");
    const before = await batches();
    const watch = watcher(client, "watched");
    await watch.started();
    const keys = Array.from({ length: 24 }, (_, i) => `key-${i}`);
    const appendRound = (round: number) =>
      Promise.all(keys.map((key) => client.append("watched", key, [{ value: `${key}@${round}` }])));
    for (let round = 0; round < 3; round++) await appendRound(round);
    await watch.until((c) => c.length >= 1, "the first change");

    // The reader goes away; the watcher resumes from its last cursor on another replica.
    await watch.stop();
    const cursor = watch.cursor as string;
    await first.close();
    for (let round = 3; round < 6; round++) await appendRound(round); // while no reader runs
    const second = await startReaderHere();
    const resumed = watcher(clientOf(second), "watched", cursor);
    for (let round = 6; round < 8; round++) await appendRound(round);
    await resumed.until((c) => {
      const last = lastPerKey([...watch.changes, ...c]);
      return keys.every((k) => last.get(k) === 8n);
    }, "every key's last change");
    await sleep(4 * POLL_MILLIS); // anything extra (a repeat) would arrive now
    await resumed.stop();

    const all = [...watch.changes, ...resumed.changes];
    for (const key of keys) {
      const offsets = all.filter((c) => c.key === key).map((c) => c.nextOffset);
      assert.deepEqual(offsets, [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n], `${key}: one change per commit, in order`);
    }
    assert.equal(all.length, (await batches()) - before, "as many changes as commits");
    for (const c of all) assert.ok(c.commitMillis > 0n && c.nextNonce === 0n);
  });

  it("watchers share one poller: storage reads do not grow with watchers or with idle keys", async () => {
    const reader = await startReaderHere();
    const client = clientOf(reader);
    await client.createKeyspace("shared");
    // Keys that exist but do not change during the watch cost the watchers nothing.
    await Promise.all(Array.from({ length: 200 }, (_, i) => client.append("shared", `idle-${i}`, [{ value: "x" }])));
    await sleep(300);
    const watchers = Array.from({ length: 5 }, () => watcher(client, "shared"));
    for (const w of watchers) await w.started();
    const objectsBefore = reader.watchHub.objectsRead;
    const pollsBefore = reader.watchHub.polls;
    const started = Date.now();
    for (let i = 0; i < 10; i++) await client.append("shared", "hot", [{ value: `v${i}` }]);
    for (const w of watchers) await w.until((c) => c.some((x) => x.key === "hot" && x.nextOffset === 10n), "hot");
    const elapsed = Date.now() - started;
    for (const w of watchers) await w.stop();
    for (const w of watchers) {
      assert.deepEqual(
        w.changes.map((c) => `${c.key}:${c.nextOffset}`),
        Array.from({ length: 10 }, (_, i) => `hot:${i + 1}`),
        "each watcher sees the hot key's changes and nothing of the idle keys",
      );
    }
    const folder = changesFolder("", "shared");
    assert.ok(folder.endsWith(".changes/"));
    const { store, prefix } = openStore(url);
    const written = (await listChangeObjects(store, prefix, "shared", BigInt(started - 1000))).length;
    await store.close();
    const read = reader.watchHub.objectsRead - objectsBefore;
    assert.ok(read <= written, `5 watchers read ${read} change objects; ${written} were written (each once)`);
    const polls = reader.watchHub.polls - pollsBefore;
    assert.ok(polls <= elapsed / POLL_MILLIS + 3, `${polls} shared polls in ${elapsed} ms for 5 watchers`);
  });

  it("refuses a missing keyspace, a bad cursor and another keyspace's cursor", async () => {
    const reader = await startReaderHere();
    const client = clientOf(reader);
    await client.createKeyspace("other");
    const first = async (keyspace: string, cursor?: string) => {
      for await (const m of client.watch(keyspace, { cursor })) return m;
    };
    await assert.rejects(first("absent"), (e: ServiceError) => e.code === status.NOT_FOUND);
    await assert.rejects(first("other", "garbage!"), (e: ServiceError) => e.code === status.INVALID_ARGUMENT);
    const w = watcher(client, "other");
    await w.started();
    await client.append("other", "k", [{ value: "x" }]);
    await w.until((c) => c.length === 1, "one change");
    await w.stop();
    await assert.rejects(
      first("watched", w.cursor),
      (e: ServiceError) => e.code === status.INVALID_ARGUMENT && /another keyspace/.test(e.details),
    );
  });

  it("sends the cursor at once: a watch from now can resume from its first message, before any change", async () => {
    const reader = await startReaderHere();
    const client = clientOf(reader);
    await client.createKeyspace("firsts");
    const first = watcher(client, "firsts");
    await first.started();
    await first.stop();
    assert.equal(first.messages, 1);
    assert.deepEqual(first.changes, [], "the first message has no changes");
    const saved = first.cursor as string;
    assert.ok(saved.length > 0, "but a cursor");

    await client.append("firsts", "k", [{ value: "while nobody watched" }]);
    const resumed = watcher(client, "firsts", saved);
    await resumed.until((c) => c.length >= 1, "the change made after the first message");
    const again = async (cursor: string) => {
      for await (const m of client.watch("firsts", { cursor })) return m;
    };
    assert.deepEqual(await again(saved), { changes: [], cursor: saved }, "a resumed stream starts with its cursor");
    await sleep(4 * POLL_MILLIS); // anything extra (a repeat) would arrive now
    await resumed.stop();
    assert.deepEqual(
      resumed.changes.map((c) => `${c.key}:${c.nextOffset}`),
      ["k:1"],
    );
    client.close();
  });

  it("refuses every bit flip of a real cursor, edited fields, huge writer lists and out-of-range numbers, before any storage request", async () => {
    // A real cursor with a writer in it, from one reader; refused (or not) by a fresh one.
    const issuer = await startReaderHere();
    const issuing = clientOf(issuer);
    await issuing.createKeyspace("probed");
    const w = watcher(issuing, "probed");
    await w.started();
    await issuing.append("probed", "k", [{ value: "x" }]);
    await w.until((c) => c.length === 1, "one change");
    await w.stop();
    const cursor = w.cursor as string;
    const bytes = Buffer.from(cursor, "base64url");
    const writer = bytes.toString("hex", 11, 19);
    assert.equal(bytes.readUInt16LE(9), 1, "the cursor names the writer of the change");
    issuing.close();

    const reader = await startReaderHere();
    const client = clientOf(reader);
    const opened = async (c: string): Promise<ServiceError | "accepted"> => {
      try {
        for await (const _ of client.watch("probed", { cursor: c })) return "accepted";
        return "accepted";
      } catch (err) {
        return err as ServiceError;
      }
    };
    const storageRequests = async () =>
      ((await reader.metrics.storageRequests.get()).values ?? []).reduce((n, v) => n + v.value, 0);
    const requestsBefore = await storageRequests();

    // What is refused, and the reason the refusal must give (any, for a flipped bit).
    const bad: [string, string, RegExp][] = [];
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const flipped = Buffer.from(bytes);
      flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7));
      bad.push([`bit ${bit}`, flipped.toString("base64url"), /./]);
    }
    const flips = bad.length;
    const edited = (at: number, write: (b: Buffer) => void) => {
      const b = Buffer.from(bytes);
      write(b.subarray(at));
      return b.toString("base64url");
    };
    bad.push(["seen + 1000", edited(19, (b) => b.writeBigUInt64LE(b.readBigUInt64LE(0) + 1000n)), /damaged/]);
    bad.push(["from + 1 h", edited(1, (b) => b.writeBigInt64LE(b.readBigInt64LE(0) + 3_600_000n)), /damaged/]);
    const { store, prefix } = openStore(url);
    await store.close();
    const folder = changesFolder(prefix, "probed");
    const now = BigInt(Date.now());
    for (const from of [-1n, 2n ** 63n - 1n, 10n ** 15n]) {
      bad.push([`from ${from}`, sealedCursor(folder, from, []), /not a time a change object can have/]);
    }
    bad.push(["from an hour ahead", sealedCursor(folder, now + 3_600_000n, []), /in the future/]);
    for (const seq of [10n ** 12n, 2n ** 64n - 1n]) {
      bad.push([`seq ${seq}`, sealedCursor(folder, now, [[writer, seq]]), /beyond any object's/]);
    }
    const ids = (n: number) => Array.from({ length: n }, (_, i) => [i.toString(16).padStart(16, "0"), 1n] as const);
    bad.push(["100,000 writers", sealedCursor(folder, now, ids(100_000)), /longer than any cursor.*4096 writers/]);
    bad.push(["4097 writers", sealedCursor(folder, now, ids(4097)), /longer than any cursor/]);
    bad.push(["another keyspace", sealedCursor(changesFolder(prefix, "other"), now, []), /another keyspace/]);
    const jsonForm = (from: string, seen: unknown[]) =>
      Buffer.from(JSON.stringify([1, "tag", from, seen])).toString("base64url");
    bad.push(["earlier version, from 2^70", jsonForm(String(2n ** 70n), []), /earlier klstore version/]);
    const oldHuge = jsonForm(
      String(now),
      ids(100_000).map(([id]) => [id, 1]),
    );
    bad.push(["earlier version, 100,000 writers", oldHuge, /longer than any cursor/]);

    for (const [what, c, reason] of bad) {
      const outcome = await opened(c);
      assert.ok(outcome !== "accepted", `${what}: accepted`);
      assert.equal(outcome.code, status.INVALID_ARGUMENT, `${what}: ${outcome.code} ${outcome.details}`);
      assert.equal(badField(outcome), "cursor", what);
      assert.match(outcome.details, reason, what);
    }
    assert.equal(await storageRequests(), requestsBefore, `${bad.length} refusals made no storage request`);
    assert.equal(await opened(cursor), "accepted", `the real cursor still is (${flips} flips refused)`);
    // A cursor sealed by hand with sane values is as good as an issued one: the seal is a
    // check against damage, not a signature (docs/watch.md).
    assert.equal(await opened(sealedCursor(folder, now, [[writer, 0n]])), "accepted");
    client.close();
  });

  it("refuses a read resumed below a trim with OUT_OF_RANGE whose details name the first offset", async () => {
    const reader = await startReaderHere();
    const client = clientOf(reader);
    await client.createKeyspace("cut");
    await client.append(
      "cut",
      "k",
      Array.from({ length: 10 }, (_, i) => ({ value: `v${i}` })),
    );
    const page = await client.readPage("cut", "k", { maxItems: 3 });
    assert.ok(page.continuation, "the page resumes at offset 3");
    assert.equal(await client.trim("cut", "k", 6n), 6n);
    const refused = (err: unknown) => {
      assert.equal((err as ServiceError).code, status.OUT_OF_RANGE);
      const details = statusDetails(err);
      assert.equal(details?.reason, "TRIMMED");
      assert.deepEqual(details?.metadata, { resume_offset: "3", first_offset: "6" });
      assert.equal(details?.firstOffset, 6n);
      return true;
    };
    await assert.rejects(client.readPage("cut", "k", { continuation: page.continuation }), refused);
    const drain = async () => {
      for await (const _ of client.items("cut", "k", { continuation: page.continuation }));
    };
    await assert.rejects(drain(), refused);
    // Where the details say the list goes on.
    const resumed = await client.readPage("cut", "k", { startOffset: 6n });
    assert.deepEqual(
      resumed.items.map((i) => i.offset),
      [6n, 7n, 8n, 9n],
    );
    client.close();
  });

  it("trims through any shard (forwarded to the owner) and applies retention on the sweep", async () => {
    const reader = await startReaderHere();
    const client = clientOf(reader);
    await client.createKeyspace("kept", { retention: { maxItems: 5n } });
    const keys = ["a", "b", "c", "d", "e", "f"];
    for (const key of keys) {
      for (let i = 0; i < 4; i++) {
        await client.append("kept", key, [{ value: `${i}-0`, nonce: BigInt(2 * i) }, { value: `${i}-1` }]);
      }
    }
    // Through a shard that may not own the key: it forwards.
    const viaOne = new KlstoreClient({
      writers: [{ name: "writer-0", address: shards[0]?.address as string }],
      reader: reader.address,
    });
    assert.equal(await viaOne.trim("kept", "a", 3n), 3n);
    viaOne.close();
    assert.equal((await client.keyMetadata("kept", "a"))?.firstOffset, 3n);
    await assert.rejects(client.trim("kept", "a", 99n), (e: ServiceError) => e.code === status.INVALID_ARGUMENT);
    await assert.rejects(client.trim("absent", "a", 1n), (e: ServiceError) => e.code === status.NOT_FOUND);
    const dup = await client.append("kept", "a", [{ value: "again", nonce: 2n }]);
    assert.deepEqual(dup, [{ kind: "duplicate" }], "nonce dedup holds after a trim");

    const summaries = await Promise.all(writers.map((w) => w.retention.sweep()));
    assert.equal(
      summaries.reduce((n, s) => n + s.keys, 0),
      keys.length,
      "each key is swept by exactly one shard, its owner",
    );
    for (const key of keys) {
      const meta = await client.keyMetadata("kept", key);
      assert.equal(meta?.firstOffset, 3n, `${key} keeps its newest 5 items`);
      assert.equal(meta?.itemCount, 5n);
    }
    const updated = await client.setRetention("kept", { maxAgeMillis: 60_000n });
    assert.equal(updated?.retention?.maxAgeMillis, 60_000n);
    assert.equal(updated?.retention?.maxItems, undefined);
    assert.equal((await client.keyspaceMetadata("kept"))?.retention?.maxAgeMillis, 60_000n);
    client.close();
  });
});
