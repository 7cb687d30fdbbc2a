// Watch and trim with real processes on SeaweedFS: `klstore watch` (remote) left running
// while two clients append to many keys through 2 writer shards; the reader is restarted
// and the watch resumed from its last printed cursor on the new one: every commit shows up
// exactly once, in order per key; a damaged cursor is refused. Then `klstore trim` through
// a shard that may not own the key, and a reverse read after it.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { KlstoreClient } from "@klstore/client";
import { type Cluster, startCluster } from "./support/cluster.ts";
import {
  CLI,
  endWithThisProcess,
  ensureBucket,
  runCli,
  S3_ENDPOINT,
  scrape,
  serve,
  stop,
  writeConfig,
} from "./support/processes.ts";

interface PrintedChange {
  readonly key: string;
  readonly next_offset: number;
  readonly cursor: string;
}

function watchProcess(reader: string, cursor?: string) {
  const args = [CLI, "--reader", reader, "watch", "many", ...(cursor ? ["--cursor", cursor] : [])];
  const child = endWithThisProcess(spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] }));
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const changes = () =>
    out
      .split("\n")
      .filter((l) => l)
      .map((l) => JSON.parse(l) as PrintedChange);
  return {
    changes,
    async until(ready: (c: PrintedChange[]) => boolean, what: string) {
      const deadline = Date.now() + 60_000;
      while (!ready(changes())) {
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${what}: ${changes().length} changes; ${err}`);
        await sleep(50);
      }
    },
    async stop(): Promise<number | null> {
      child.kill("SIGTERM");
      const [code] = await once(child, "exit");
      return code as number | null;
    },
  };
}

describe("watch and trim across processes", { skip: !S3_ENDPOINT && "needs SeaweedFS (scripts/test.sh)" }, () => {
  let cluster: Cluster;
  let config: string;

  before(async () => {
    await ensureBucket();
    config = writeConfig().file;
    cluster = await startCluster(config, 2, { metrics: true });
  });
  after(() => cluster?.stop());

  it("reports every commit once, in order per key, across a reader restart", async () => {
    const writerArgs = ["--writer", cluster.shardList];
    assert.equal((await runCli([...writerArgs, "keyspace", "create", "many"])).code, 0);
    const batches = async () => {
      let n = 0;
      for (const w of cluster.writers) n += await scrape(w.metrics as string, "klstore_batches_total");
      return n;
    };
    const before = await batches();
    const keys = Array.from({ length: 30 }, (_, i) => `user/${i}`);
    const clients = [0, 1].map(() => new KlstoreClient({ writers: cluster.shardList, reader: cluster.reader.address }));
    // A cursor from before the first append (a watch's first message carries it at once), so
    // the CLI's watch sees every commit however long it takes to start on a busy machine.
    let start = "";
    for await (const m of (clients[0] as KlstoreClient).watch("many")) {
      start = m.cursor;
      break;
    }
    const first = watchProcess(cluster.reader.address, start);

    const round = (r: number) =>
      Promise.all(keys.map((key, i) => (clients[i % 2] as KlstoreClient).append("many", key, [{ value: `${r}` }])));
    for (let r = 0; r < 3; r++) await round(r);
    await first.until((c) => c.length > 0, "the first changes");
    assert.equal(await first.stop(), 0);
    const cursor = first.changes().at(-1)?.cursor as string;

    // The reader is replaced; appends continue meanwhile; the watch resumes on the new one.
    await stop(cluster.reader);
    for (let r = 3; r < 5; r++) await round(r);
    const reader = await serve("reader", config, ["reader.listen=127.0.0.1:0"]);
    const resumed = watchProcess(reader.address, cursor);
    for (let r = 5; r < 7; r++) await round(r);
    const all = () => [...first.changes(), ...resumed.changes()];
    await resumed.until(() => {
      const last = new Map(all().map((c) => [c.key, c.next_offset]));
      return keys.every((k) => last.get(k) === 7);
    }, "every key's seventh item");
    await sleep(1000); // a repeated change would show up now
    assert.equal(await resumed.stop(), 0);
    for (const c of clients) c.close();

    for (const key of keys) {
      assert.deepEqual(
        all()
          .filter((c) => c.key === key)
          .map((c) => c.next_offset),
        [1, 2, 3, 4, 5, 6, 7],
        `${key}: one change per commit, in commit order`,
      );
    }
    assert.equal(all().length, (await batches()) - before, "as many changes as the shards committed");

    // A damaged cursor is refused by the reader with a clear message, nothing printed.
    const damaged = Buffer.from(cursor, "base64url");
    damaged[3] = (damaged[3] as number) ^ 1; // a bit of `from`
    const refused = await runCli([
      "--reader",
      reader.address,
      "watch",
      "many",
      "--cursor",
      damaged.toString("base64url"),
    ]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /^klstore: INVALID_ARGUMENT: invalid cursor: cursor is damaged/);
    assert.equal(refused.stdout, "");
    await stop(reader);
  });

  it("trims through any shard and serves only what is left, both ways", async () => {
    const oneShard = ["--writer", cluster.writers[0]?.address as string];
    const reader = await serve("reader", config, ["reader.listen=127.0.0.1:0"]);
    after(() => stop(reader));
    const reading = ["--reader", reader.address];
    await runCli([...oneShard, "keyspace", "create", "trimmed"]);
    for (const key of ["a", "b", "c"]) {
      const appended = await runCli([...oneShard, "append", "trimmed", key], "0\n1\n2\n3\n4\n5\n");
      assert.equal(appended.code, 0, appended.stderr);
      const trimmed = await runCli([...oneShard, "trim", "trimmed", key, "--before-offset", "4"]);
      assert.equal(trimmed.code, 0, trimmed.stderr);
      assert.equal(JSON.parse(trimmed.stdout).first_offset, 4);
      const backwards = await runCli([...reading, "read", "trimmed", key, "--reverse", "--page-size", "1"]);
      assert.deepEqual(
        backwards.stdout
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l).offset),
        [5, 4],
      );
      const stat = JSON.parse((await runCli([...reading, "stat", "trimmed", key])).stdout);
      assert.equal(stat.first_offset, 4);
      assert.equal(stat.item_count, 2);
    }
  });
});
