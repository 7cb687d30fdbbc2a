// The shared log with real processes (docs/log.md): writer shards and a reader from one
// config file with `[log] enabled`, on SeaweedFS. Appends through any shard, kill -9 of a
// shard under load, a shard-list change under load (3 -> 4 shards: slots move, each move a
// takeover), follow and watch; then materialization and deletion leave every item in the
// per-key objects, readable without the log. Every item is counted, exactly once.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type ClientItem, KlstoreClient } from "@klstore/client";
import type { Shard } from "@klstore/sharding";
import { decodeSegmentIndex } from "../packages/core/src/format/log-segment.ts";
import { StoreReader } from "../packages/core/src/reader/store-reader.ts";
import { readRange } from "../packages/core/src/storage/object-store.ts";
import { testS3Store } from "../packages/core/test/backends.ts";
import {
  ensureBucket,
  freePort,
  S3_ENDPOINT,
  type ServedProcess,
  scrape,
  serve,
  stop,
  writeConfig,
} from "./support/processes.ts";
import { produce, valueOf } from "./support/producer.ts";

const KEYSPACE = "logged";
// Materialized and deleted quickly, so that the test sees both; kept 5 s (a watcher resumes
// from segments as long as they are kept).
const LOG = `[log]
enabled=true
materialize_interval_millis=1000
retention_millis=5000
delete_delay_millis=0
duty_cycle_millis=200
`;

const decode = (item: ClientItem) => Buffer.from(item.value).toString("utf8");

/** Every nonce from 0 on exactly once, in order, at least `acked` of them (one more may have landed). */
function assertExactlyOnce(key: string, items: readonly ClientItem[], acked: bigint): void {
  assert.ok(BigInt(items.length) >= acked, `${key}: ${items.length} stored < ${acked} acknowledged`);
  assert.ok(BigInt(items.length) <= acked + 1n, `${key}: ${items.length} stored > ${acked} acknowledged + 1`);
  assert.deepEqual(
    items.map((i) => i.nonce),
    items.map((_, i) => BigInt(i)),
    `${key}: nonces dense`,
  );
  assert.deepEqual(
    items.map(decode),
    items.map((_, i) => valueOf(key, BigInt(i))),
  );
  assert.deepEqual(
    items.map((i) => i.offset),
    items.map((_, i) => BigInt(i)),
    `${key}: offsets dense`,
  );
}

describe("the shared log with real processes on SeaweedFS", { skip: !S3_ENDPOINT && "needs S3" }, () => {
  let config: { file: string; prefix: string };
  let shards: Shard[];
  const writers: ServedProcess[] = [];
  let reader: ServedProcess;

  const startWriter = (i: number, list: readonly Shard[]) => {
    const shard = list[i] as Shard;
    return serve("writer", config.file, [
      `writer.name=${shard.name}`,
      `writer.listen=${shard.address}`,
      `writer.shards=${list.map((s) => `${s.name}=${s.address}`).join(",")}`,
      "writer.metrics_listen=127.0.0.1:0",
    ]);
  };

  const readAll = async (client: KlstoreClient, key: string) => {
    const items: ClientItem[] = [];
    for await (const item of client.items(KEYSPACE, key, { pageSize: 200 })) items.push(item);
    return items;
  };

  before(async () => {
    await ensureBucket();
    config = writeConfig(LOG);
    const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    shards = ports.map((port, i) => ({ name: `writer-${i}`, address: `127.0.0.1:${port}` }));
    for (let i = 0; i < 3; i++) writers.push(await startWriter(i, shards.slice(0, 3)));
    reader = await serve("reader", config.file, ["reader.listen=127.0.0.1:0", "reader.follow_poll_millis=100"]);
    const client = new KlstoreClient({ writers: shards.slice(0, 3), reader: reader.address });
    await client.createKeyspace(KEYSPACE);
    client.close();
  });
  after(async () => {
    await Promise.all([...writers, reader].filter(Boolean).map(stop));
  });

  it("stores appends of many keys in shared segments and reads them back through the log", async () => {
    const client = new KlstoreClient({ writers: shards.slice(0, 3), reader: reader.address });
    const keys = Array.from({ length: 40 }, (_, i) => `many-${i}`);
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        keys.map((k) => client.append(KEYSPACE, k, [{ value: `${k}/${round}`, nonce: BigInt(round) }])),
      );
    }
    for (const key of keys) {
      assert.deepEqual(
        (await readAll(client, key)).map(decode),
        [0, 1, 2].map((r) => `${key}/${r}`),
      );
    }
    // Each shard wrote segments for many keys at once: far fewer than one per append.
    let segments = 0;
    for (const w of writers) segments += await scrape(w.metrics as string, "klstore_batches_total");
    assert.ok(segments >= keys.length * 3, "one batch (entry) per append per key");
    client.close();
  });

  it("refuses to start a writer shard or a reader without [log] enabled on a store the log writes", async () => {
    const port = await freePort();
    for (const role of ["writer", "reader"] as const) {
      const sets =
        role === "writer"
          ? [
              "log.enabled=false",
              "writer.name=writer-x",
              `writer.listen=127.0.0.1:${port}`,
              `writer.shards=writer-x=127.0.0.1:${port}`,
            ]
          : ["log.enabled=false", "reader.listen=127.0.0.1:0"];
      await assert.rejects(
        serve(role, config.file, sets),
        /exited with 1 before serving:\nklstore: .* is written through the shared log \(\[log\] enabled, docs\/log\.md\): set \[log\] enabled=true on every writer shard and reader$/,
        role,
      );
    }
  });

  it("loses and duplicates nothing under load across kill -9 of a shard and a shard-list change (3 -> 4)", async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `moving-${i}`);
    const stopLoad = new AbortController();
    // Half the appends route by the old list, half by the new one: while the shards disagree,
    // a slot is written by its old and its new owner in turn, each taking it from the other.
    const oldList = new KlstoreClient({ writers: shards.slice(0, 3), reader: reader.address });
    const newList = new KlstoreClient({ writers: shards, reader: reader.address });
    const load = produce([oldList], KEYSPACE, keys, stopLoad.signal);
    await sleep(500);
    // kill -9: the shard's next instance fences the old one (restart fence) and goes on.
    (writers[1] as ServedProcess).child.kill("SIGKILL");
    await (writers[1] as ServedProcess).exited;
    writers[1] = await startWriter(1, shards.slice(0, 3));
    await sleep(500);
    const mixed = produce(
      [oldList, newList],
      KEYSPACE,
      keys.map((k) => `${k}-b`),
      stopLoad.signal,
    );
    writers.push(await startWriter(3, shards));
    for (let i = 0; i < 3; i++) {
      assert.equal(await stop(writers[i] as ServedProcess), 0, `writer-${i} exits cleanly on SIGTERM`);
      writers[i] = await startWriter(i, shards);
      await sleep(300);
    }
    await sleep(500);
    stopLoad.abort();
    const reports = await Promise.all([load, mixed]);
    const check = new KlstoreClient({ writers: shards, reader: reader.address });
    let total = 0;
    for (const report of reports) {
      for (const [key, acked] of report.acked) {
        const items = await readAll(check, key);
        assertExactlyOnce(key, items, acked);
        total += items.length;
      }
    }
    console.log(
      `shared log: ${total} items stored exactly once over ${keys.length * 2} keys across kill -9 and 3 -> 4 shards`,
    );
    oldList.close();
    newList.close();
    check.close();
  });

  it("delivers new items to a follower, and every commit to a watcher", async () => {
    const client = new KlstoreClient({ writers: shards, reader: reader.address });
    let cursor = "";
    for await (const m of client.watch(KEYSPACE)) {
      cursor = m.cursor;
      break;
    }
    const stopFollowing = new AbortController();
    const seen: string[] = [];
    const following = (async () => {
      for await (const item of client.items(KEYSPACE, "followed", { follow: true, signal: stopFollowing.signal })) {
        seen.push(decode(item));
      }
    })();
    for (let i = 0; i < 5; i++) await client.append(KEYSPACE, "followed", [{ value: `f${i}` }]);
    const deadline = Date.now() + 60_000;
    while (seen.length < 5 && Date.now() < deadline) await sleep(50);
    stopFollowing.abort();
    await following;
    assert.deepEqual(seen, ["f0", "f1", "f2", "f3", "f4"]);
    const ends: bigint[] = [];
    const stopWatching = new AbortController();
    for await (const m of client.watch(KEYSPACE, { cursor, signal: stopWatching.signal })) {
      for (const c of m.changes) if (c.key === "followed") ends.push(c.nextOffset);
      if (ends.at(-1) === 5n) break;
    }
    assert.deepEqual(ends, [1n, 2n, 3n, 4n, 5n], "one change per commit, in order");
    client.close();
  });

  it("materializes every key into per-key objects readable without the log, and deletes the segments", async () => {
    const client = new KlstoreClient({ writers: shards, reader: reader.address });
    const keys = Array.from({ length: 10 }, (_, i) => `settled-${i}`);
    await Promise.all(keys.map((k) => client.append(KEYSPACE, k, [{ value: `${k}/a` }, { value: `${k}/b` }])));
    const prefix = config.prefix;
    const store = testS3Store(prefix);
    const plain = new StoreReader({ store, prefix });
    // Materialized within materialize_interval_millis (1 s) and a duty cycle or two.
    const deadline = Date.now() + 60_000;
    const materialized = async () => {
      for (const key of keys) {
        const page = await plain.readPage(KEYSPACE, key);
        if (page.items.length !== 2) return false;
      }
      return true;
    };
    while (!(await materialized()) && Date.now() < deadline) await sleep(200);
    assert.ok(await materialized(), "every key's items are in its per-key objects");
    for (const key of keys) {
      assert.deepEqual(
        (await plain.readPage(KEYSPACE, key)).items.map((i) => Buffer.from(i.value).toString()),
        [`${key}/a`, `${key}/b`],
      );
    }
    // Segments nothing needs are deleted: what stays of each log is its fences and newest.
    const holdingEntries = async () => {
      const listed = (await store.list(`${prefix}.logs/`, { maxKeys: 1000 })).objects.map((o) => o.key);
      const newest = new Map<string, string>();
      for (const key of listed) {
        const folder = key.slice(0, key.lastIndexOf("/"));
        if ((newest.get(folder) ?? "") < key) newest.set(folder, key);
      }
      const kept: string[] = [];
      for (const key of listed) {
        if (newest.get(key.slice(0, key.lastIndexOf("/"))) === key) continue;
        const head = await readRange(store, key, 0, 64 * 1024);
        const index = head && decodeSegmentIndex(key, head.body);
        if (index && index.kind === "data" && index.entries.length > 0) kept.push(key);
      }
      return kept;
    };
    while ((await holdingEntries()).length > 0 && Date.now() < deadline) await sleep(500);
    assert.deepEqual(await holdingEntries(), [], "no segment with entries is kept but a log's newest");
    await store.close();
    client.close();
  });
});
