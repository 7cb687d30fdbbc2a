// WatchKeyspace, Trim and retention through the services: 3 writer shards appending to
// many keys while watchers follow the keyspace, one of them across a reader restart; the
// shared poller's storage cost; trims forwarded to the owner; the retention sweep.
// Needs: SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set (else the filesystem).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type ServiceError, status } from "@grpc/grpc-js";
import { changesFolder, listChangeObjects, openStore } from "@klstore/core";
import { type RunningReader, startReader } from "@klstore/reader-service";
import { createLogger } from "@klstore/service-runtime";
import { type RunningWriterShard, startWriterShard } from "@klstore/writer-service";
import { freePort } from "../../../e2e/support/processes.ts";
import { backends } from "../../core/test/backends.ts";
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
  };
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
    await sleep(300); // the watch is established (it starts from now)
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
    await sleep(300);
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
    await sleep(200);
    await client.append("other", "k", [{ value: "x" }]);
    await w.until((c) => c.length === 1, "one change");
    await w.stop();
    await assert.rejects(
      first("watched", w.cursor),
      (e: ServiceError) => e.code === status.INVALID_ARGUMENT && /another keyspace/.test(e.details),
    );
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
