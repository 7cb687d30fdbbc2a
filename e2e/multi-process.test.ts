// klstore as it is deployed: 3 writer shard processes and 2 reader processes
// (`klstore serve`) on SeaweedFS, one config file, driven over gRPC.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type ClientItem, KlstoreClient } from "@klstore/client";
import { type Shard, ShardRing } from "@klstore/sharding";
import {
  CLI,
  endWithThisProcess,
  ensureBucket,
  freePort,
  runCli,
  S3_ENDPOINT,
  type ServedProcess,
  scrape,
  serve,
  serveAll,
  stop,
  writeConfig,
} from "./support/processes.ts";
import { produce, valueOf } from "./support/producer.ts";

const KEYSPACE = "e2e";
const decode = (item: ClientItem) => Buffer.from(item.value).toString("utf8");

async function readAll(client: KlstoreClient, key: string): Promise<ClientItem[]> {
  const items: ClientItem[] = [];
  for await (const item of client.items(KEYSPACE, key, { pageSize: 500 })) items.push(item);
  return items;
}

/** Every nonce from 0 on exactly once, in order, at least `acked` of them (one more may have landed unacknowledged). */
function assertExactlyOnce(key: string, items: readonly ClientItem[], acked: bigint): void {
  const nonces = items.map((i) => i.nonce);
  assert.ok(BigInt(items.length) >= acked, `${key}: ${items.length} stored < ${acked} acknowledged`);
  assert.ok(BigInt(items.length) <= acked + 1n, `${key}: ${items.length} stored > ${acked} acknowledged + 1`);
  assert.deepEqual(
    nonces,
    items.map((_, i) => BigInt(i)),
    `${key}: nonces not dense`,
  );
  assert.deepEqual(
    items.map(decode),
    items.map((_, i) => valueOf(key, BigInt(i))),
  );
  assert.deepEqual(
    items.map((i) => i.offset),
    items.map((_, i) => BigInt(i)),
    `${key}: offsets not dense`,
  );
}

describe("3 writer shard processes and 2 reader processes on SeaweedFS", { skip: !S3_ENDPOINT && "needs S3" }, () => {
  let config: { file: string; prefix: string };
  const writers: ServedProcess[] = [];
  const readers: ServedProcess[] = [];
  let shards: Shard[];
  let client: KlstoreClient;

  async function startWriter(i: number, list: readonly Shard[]): Promise<ServedProcess> {
    const shard = list[i] as Shard;
    const shardList = list.map((s) => `${s.name}=${s.address}`).join(",");
    return serve("writer", config.file, [
      `writer.name=${shard.name}`,
      `writer.listen=${shard.address}`,
      `writer.shards=${shardList}`,
      "writer.metrics_listen=127.0.0.1:0",
    ]);
  }

  before(async () => {
    await ensureBucket();
    config = writeConfig();
    const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    shards = ports.map((port, i) => ({ name: `writer-${i}`, address: `127.0.0.1:${port}` }));
    const initial = shards.slice(0, 3);
    const reader = () =>
      serve("reader", config.file, ["reader.listen=127.0.0.1:0", "reader.metrics_listen=127.0.0.1:0"]);
    const started = await serveAll([...initial.map((_, i) => () => startWriter(i, initial)), reader, reader]);
    writers.push(...started.slice(0, 3));
    readers.push(...started.slice(3));
    client = new KlstoreClient({ writers: initial, reader: readers[0]?.address as string });
    await client.createKeyspace(KEYSPACE);
  });

  after(async () => {
    client?.close();
    await Promise.all([...writers, ...readers].map(stop));
  });

  it("lands appends made through any shard on the owner and reads them back identically through every reader", async () => {
    const keys = Array.from({ length: 15 }, (_, i) => `owned-${i}`);
    const ring = new ShardRing(shards.slice(0, 3));
    // Through each shard alone: a client that knows only that shard, so the shard forwards.
    for (const [i, writer] of writers.entries()) {
      const viaOne = new KlstoreClient({ writers: `only=${writer.address}`, reader: readers[0]?.address as string });
      for (const key of keys) {
        const [outcome] = await viaOne.append(KEYSPACE, key, [{ value: `via-${i}`, nonce: BigInt(i) }]);
        assert.equal(outcome?.kind, "appended");
      }
      viaOne.close();
    }
    for (const [i, writer] of writers.entries()) {
      const owned = keys.filter((k) => ring.ownerOf(KEYSPACE, k).name === `writer-${i}`).length;
      // Every item of a key is stored by its owner, whichever shard it came through.
      assert.equal(await scrape(writer.metrics as string, "klstore_appended_items_total"), owned * 3, `writer-${i}`);
      assert.equal(
        await scrape(writer.metrics as string, "klstore_forwarded_requests_total"),
        keys.length - owned,
        `writer-${i} forwards what it does not own`,
      );
      // Three objects of one 5-byte item (40 bytes of record framing each) per owned key, none
      // merged yet: every body is kept for the key's compaction.
      assert.equal(
        await scrape(writer.metrics as string, "klstore_writer_compaction_cache_bytes"),
        owned * 3 * 45,
        `writer-${i} compaction cache`,
      );
    }
    for (const reader of readers) {
      const viaReader = new KlstoreClient({ writers: shards.slice(0, 3), reader: reader.address });
      for (const key of keys) {
        const page = await viaReader.readPage(KEYSPACE, key);
        assert.deepEqual(page.items.map(decode), ["via-0", "via-1", "via-2"], key);
        assert.deepEqual(
          page.items.map((i) => i.offset),
          [0n, 1n, 2n],
        );
        const backwards = await viaReader.readPage(KEYSPACE, key, { order: "backwards" });
        assert.deepEqual(backwards.items.map(decode), ["via-2", "via-1", "via-0"], key);
      }
      viaReader.close();
      assert.ok((await scrape(reader.metrics as string, "klstore_pages_served_total")) >= keys.length * 2);
      // Each reader read every key's three objects and keeps them all (far below its bound).
      assert.equal(await scrape(reader.metrics as string, "klstore_object_cache_bytes"), keys.length * 3 * 45);
    }
  });

  it("delivers new items to a follower within a bounded time", async () => {
    const stopFollowing = new AbortController();
    const seen: { value: string; at: number }[] = [];
    const following = (async () => {
      const viaReader1 = new KlstoreClient({ writers: shards.slice(0, 3), reader: readers[1]?.address as string });
      try {
        for await (const item of viaReader1.items(KEYSPACE, "followed", {
          follow: true,
          signal: stopFollowing.signal,
        })) {
          seen.push({ value: decode(item), at: Date.now() });
        }
      } finally {
        viaReader1.close();
      }
    })();
    // The follower is waiting at the (empty) end: what the delays below measure from.
    const ready = Date.now() + 60_000;
    while ((await scrape(readers[1]?.metrics as string, "klstore_followers")) < 1 && Date.now() < ready)
      await sleep(20);
    const sentAt: number[] = [];
    for (let i = 0; i < 5; i++) {
      await client.append(KEYSPACE, "followed", [{ value: `f${i}` }]);
      sentAt.push(Date.now());
      await sleep(150);
    }
    const deadline = Date.now() + 60_000;
    while (seen.length < 5 && Date.now() < deadline) await sleep(50);
    stopFollowing.abort();
    await following;
    assert.deepEqual(
      seen.map((s) => s.value),
      ["f0", "f1", "f2", "f3", "f4"],
    );
    const delays = seen.map((s, i) => s.at - (sentAt[i] as number));
    // Poll interval 100 ms in this config; 5 s is the bound a user could notice.
    assert.ok(Math.max(...delays) < 5000, `follow delays ${delays}`);
    console.log(`follow delays after the append was acknowledged: ${delays.join(", ")} ms`);
  });

  it("loses and duplicates nothing while the shard list changes under load (3 -> 4 shards, rolling restart)", async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `moving-${i}`);
    const stopLoad = new AbortController();
    // Half the appends route by the old 3-shard list, half by the new 4-shard list, so while
    // the shards disagree a key is written by its old and its new owner in turn.
    const oldList = new KlstoreClient({ writers: shards.slice(0, 3), reader: readers[0]?.address as string });
    const newList = new KlstoreClient({ writers: shards, reader: readers[0]?.address as string });
    const load = produce([oldList, newList], KEYSPACE, keys, stopLoad.signal);
    await sleep(700);
    writers.push(await startWriter(3, shards));
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      assert.equal(await stop(writers[i] as ServedProcess), 0, `writer-${i} exits cleanly on SIGTERM`);
      const t1 = Date.now();
      writers[i] = await startWriter(i, shards);
      console.log(`writer-${i}: stop ${t1 - t0} ms, start ${Date.now() - t1} ms`);
      await sleep(300);
    }
    await sleep(700);
    stopLoad.abort();
    const report = await load;
    oldList.close();
    newList.close();
    let total = 0n;
    for (const key of keys) {
      const items = await readAll(client, key);
      assertExactlyOnce(key, items, report.acked.get(key) ?? 0n);
      total += BigInt(items.length);
    }
    let fenced = 0;
    let lostRaces = 0;
    for (const w of writers) {
      fenced += await scrape(w.metrics as string, "klstore_grpc_calls_total", { code: "ABORTED" });
      lostRaces += await scrape(w.metrics as string, "klstore_storage_requests_total", {
        outcome: "precondition_failed",
      });
    }
    console.log(
      `shard-list change: ${total} items stored exactly once over ${keys.length} keys; ` +
        `${report.retries} resends after the client's own retries (${JSON.stringify(Object.fromEntries(report.failureCodes))}); ` +
        `since the restarts: ${fenced} calls answered ABORTED (fenced), ${lostRaces} conditional writes lost to another shard`,
    );
    assert.ok(total > BigInt(keys.length) * 5n, "the load made progress");
    // Keys moved: the new shard stores some of them now.
    assert.ok((await scrape(writers[3]?.metrics as string, "klstore_appended_items_total")) > 0);
  });

  it("loses nothing acknowledged when every shard gets SIGTERM under load, even appends acknowledged on acceptance", async () => {
    const keys = Array.from({ length: 8 }, (_, i) => `accepted-${i}`);
    const stopLoad = new AbortController();
    const loadClient = new KlstoreClient({
      writers: shards,
      reader: readers[0]?.address as string,
      maxAttempts: 1,
    });
    const load = produce([loadClient], KEYSPACE, keys, stopLoad.signal, { acceptedOnly: true });
    await sleep(800);
    const codes = await Promise.all(writers.map(stop));
    assert.deepEqual(codes, [0, 0, 0, 0]);
    stopLoad.abort();
    const report = await load;
    loadClient.close();
    for (let i = 0; i < 4; i++) writers[i] = await startWriter(i, shards);
    for (const key of keys) {
      const items = await readAll(client, key);
      assertExactlyOnce(key, items, report.acked.get(key) ?? 0n);
    }
    const acked = [...report.acked.values()].reduce((a, b) => a + b, 0n);
    assert.ok(acked > 0n, "the load made progress");
    console.log(`SIGTERM under load: ${acked} appends acknowledged on acceptance, all stored once`);
  });

  it("serves the CLI in remote mode: keyspace, append, read, stat, read --follow", async () => {
    const remote = ["--writer", writers[0]?.address as string, "--reader", readers[1]?.address as string];
    const created = await runCli([...remote, "keyspace", "create", "cli-remote", "--compression", "zstd"]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /"keyspace":"cli-remote".*"compression":"zstd"/);
    const again = await runCli([...remote, "keyspace", "create", "cli-remote"]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /ALREADY_EXISTS/);
    const appended = await runCli(
      [...remote, "append", "cli-remote", "k", "--format", "jsonl"],
      '{"value":"a","nonce":"1"}\n{"value":"b","nonce":"2"}\n',
    );
    assert.equal(appended.code, 0, appended.stderr);
    assert.equal(appended.stdout.trim().split("\n").length, 2);
    const dup = await runCli([...remote, "append", "cli-remote", "k", "again", "--nonce", "2"]);
    assert.equal(dup.stdout.trim(), "duplicate (dropped)");
    const read = await runCli([...remote, "read", "cli-remote", "k", "--reverse", "--output", "text"]);
    assert.deepEqual(
      read.stdout
        .trim()
        .split("\n")
        .map((l) => l.split("\t")[3]),
      ["b", "a"],
    );
    const stat = await runCli([...remote, "stat", "cli-remote", "k"]);
    assert.match(stat.stdout, /"next_offset":2,"next_nonce":"3","item_count":2/);
    const bad = await runCli([...remote, "read", "nope", "k"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /NOT_FOUND/);

    // --follow prints the existing items, then new ones, until SIGTERM.
    const follower = endWithThisProcess(
      spawn(process.execPath, [CLI, ...remote, "read", "cli-remote", "k", "--follow", "--output", "text"]),
    );
    let out = "";
    follower.stdout.on("data", (d) => (out += d));
    const printed = async (done: () => boolean) => {
      const deadline = Date.now() + 60_000; // a CLI start on a loaded machine takes seconds
      while (!done() && Date.now() < deadline) await sleep(50);
    };
    await printed(() => out.split("\n").length >= 3);
    await runCli([...remote, "append", "cli-remote", "k", "c"]);
    await printed(() => out.includes("\tc\n"));
    follower.kill("SIGTERM");
    const [code] = await once(follower, "exit");
    assert.equal(code, 0);
    assert.deepEqual(
      out
        .trim()
        .split("\n")
        .map((l) => l.split("\t")[3]),
      ["a", "b", "c"],
    );
  });
});
