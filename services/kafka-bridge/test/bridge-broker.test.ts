// The bridge against the real broker (Apache Kafka, KRaft) and SeaweedFS: records with keys
// and headers across 3 partitions are stored exactly once, in partition order, with the
// parsed keyspace, key, nonce and timestamp; bad records are skipped without stopping the
// bridge; offsets are committed only for durable records. Then the same across a kill -9
// and restart, and a consumer-group rebalance, with bridges as real processes.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type Item, LogTail, StoreReader, StoreWriter } from "@klstore/core";
import { createLogger } from "@klstore/service-runtime";
import { startWriterShard } from "@klstore/writer-service";
import { endWithThisProcess } from "../../../e2e/support/processes.ts";
import {
  backends,
  S3_ACCESS_KEY,
  S3_BUCKET,
  S3_ENDPOINT,
  S3_SECRET_KEY,
} from "../../../packages/core/test/backends.ts";
import { loadBridgeConfig } from "../src/bridge-config.ts";
import { startBridge } from "../src/run-bridge.ts";
import {
  committedOffsets,
  consumeAll,
  createTopic,
  EXAMPLE_CONFIG,
  exampleConfig,
  KAFKA_BOOTSTRAP,
  type ProducedRecord,
  TestProducer,
} from "./support.ts";

const PARTITIONS = 3;
const CLI = resolve(import.meta.dirname, "../../../packages/cli/src/main.ts");
const logger = createLogger("test", "silent");
const backend = backends().at(-1); // SeaweedFS when it is running, else the filesystem

function unique(name: string): string {
  return `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 7)}`;
}

/** examples/kafka-bridge.ini, pointed at the test services, with the test's parsers. */
function configFile(storeUrl: string, topic: string, group: string, extra = ""): string {
  const dir = mkdtempSync(join(tmpdir(), "klstore-bridge-"));
  const file = join(dir, "bridge.ini");
  const seed = exampleConfig("http://unused", "unused", KAFKA_BOOTSTRAP as string)
    // The store comes from [store] url (the test backend's prefix); the example's [s3] is dropped.
    .replace(/\[s3\][\s\S]*?\[batcher\]/, `[store]\nurl="${storeUrl}"\n[batcher]`)
    .replace('topic="inbound"', `topic="${topic}"`)
    .replace('group.id="test_group"', `group.id="${group}"`)
    .replace("offset_commit_interval_seconds=60", "offset_commit_interval_seconds=1")
    .replace("batch_flush_interval_millis=1000", "batch_flush_interval_millis=100")
    .replace('timestamp_parser="None"', 'timestamp_parser="RecordHeaderBigEndian(ts)"')
    .replace('keyspace_parser="Static(my_keyspace)"', 'keyspace_parser="Static(bridged)"')
    // A killed member is noticed after 6 s (the broker's minimum) instead of 45 s.
    .replace(
      "auto.offset.reset=earliest",
      "auto.offset.reset=earliest\nsession.timeout.ms=6000\nheartbeat.interval.ms=500",
    );
  writeFileSync(file, `${seed}[server]\nlog_level=info\n${extra}`);
  return file;
}

async function readKey(reader: StoreReader, key: string): Promise<Item[]> {
  const items: Item[] = [];
  let continuation: string | undefined;
  do {
    const page = await reader.readPage("bridged", key, { maxSize: 1000, continuation });
    items.push(...page.items);
    continuation = page.continuation;
  } while (continuation);
  return items;
}

/** Every good record once, in partition order, with its parsed nonce and timestamp. */
async function assertStoredExactlyOnce(reader: StoreReader, produced: readonly ProducedRecord[]): Promise<number> {
  let total = 0;
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const expected = produced.filter((r) => r.partition === partition && r.timestamp !== undefined);
    const items = await readKey(reader, String(partition));
    // offset:nonce:timestamp:value, so a failure shows all four at once.
    assert.deepEqual(
      items.map((i) => `${i.offset}:${i.nonce}:${i.timestamp}:${Buffer.from(i.value).toString()}`),
      expected.map((r, i) => `${i}:${r.offset}:${r.timestamp}:${r.value}`),
      `partition ${partition}: each record once, in order, offsets dense, nonce = Kafka offset, timestamp from the header`,
    );
    total += items.length;
  }
  return total;
}

/** Polls until every good record is stored; generous, as a loaded machine is slow, not wrong. */
async function waitUntilStored(reader: StoreReader, produced: readonly ProducedRecord[], timeoutMillis = 180_000) {
  const deadline = Date.now() + timeoutMillis;
  for (;;) {
    let stored = 0n;
    for (let partition = 0; partition < PARTITIONS; partition++) {
      stored += (await reader.readKeyMetadata("bridged", String(partition)))?.itemCount ?? 0n;
    }
    const expected = produced.filter((r) => r.timestamp !== undefined).length;
    if (stored >= BigInt(expected)) return;
    if (Date.now() > deadline) throw new Error(`only ${stored} of ${expected} records stored`);
    await sleep(200);
  }
}

interface BridgeProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly stderr: string[];
}

async function startBridgeProcess(config: string): Promise<BridgeProcess> {
  const child = endWithThisProcess(
    spawn(process.execPath, [CLI, "kafka-bridge", "--config", config], { stdio: ["ignore", "pipe", "pipe"] }),
  );
  const stderr: string[] = [];
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", (l) => stderr.push(l));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const ready = once(createInterface({ input: child.stdout as NodeJS.ReadableStream }), "line");
  await Promise.race([
    ready,
    exited.then((code) => {
      throw new Error(`bridge exited with ${code}:\n${stderr.join("\n")}`);
    }),
  ]);
  return { child, exited, stderr };
}

describe("Kafka bridge against a real broker", {
  skip: !KAFKA_BOOTSTRAP && "needs KLSTORE_TEST_KAFKA_BOOTSTRAP (scripts/test.sh starts Kafka)",
}, () => {
  it("stores every record once, in partition order, with parsed fields; skips bad records; commits durable offsets", async () => {
    const opened = await (backend as NonNullable<typeof backend>).open();
    const topic = unique("inbound");
    const group = unique("group");
    await createTopic(topic, PARTITIONS);
    await new StoreWriter({ store: opened.store, prefix: opened.prefix }).createKeyspace("bridged");
    const producer = new TestProducer(topic, PARTITIONS);
    let bridge: Awaited<ReturnType<typeof startBridge>> | undefined;
    try {
      await producer.produce(150, 25); // every 25th record lacks its timestamp header
      bridge = await startBridge(loadBridgeConfig(configFile(opened.url, topic, group), [], {}), logger);
      await producer.produce(150, 25); // more while the bridge runs
      const reader = new StoreReader({ store: opened.store, prefix: opened.prefix });
      await waitUntilStored(reader, producer.produced);
      const metric = async (name: string) =>
        ((await bridge?.metrics.registry.getSingleMetric(name)?.get())?.values ?? []).map((v) => v.value);
      // A commit and a lag sample (both on the 1 s commit interval) after the last record.
      const deadline = Date.now() + 60_000;
      while (JSON.stringify(await metric("klstore_bridge_consumer_lag")) !== "[0,0,0]" && Date.now() < deadline) {
        await sleep(100);
      }
      assert.deepEqual(await metric("klstore_bridge_consumer_lag"), [0, 0, 0], "caught up on every partition");
      await bridge.stop();
      const stored = await assertStoredExactlyOnce(reader, producer.produced);
      const bad = producer.produced.length - stored;
      assert.equal(bad, 12);
      assert.equal(
        (await metric("klstore_bridge_bad_records_total")).reduce((a, b) => a + b, 0),
        bad,
      );
      assert.equal(
        (await metric("klstore_bridge_records_total")).reduce((a, b) => a + b, 0),
        producer.produced.length,
      );
      const timing = await bridge.metrics.registry.getSingleMetricAsString("klstore_bridge_commit_seconds");
      assert.ok(Number(/klstore_bridge_commit_seconds_count\S* (\d+)/.exec(timing)?.[1]) >= 1, "commits are timed");
      // Everything was durable at stop, so every partition's offset is committed to its end.
      const committed = await committedOffsets(group, topic);
      for (let p = 0; p < PARTITIONS; p++) {
        assert.equal(
          committed.get(p),
          BigInt(producer.produced.filter((r) => r.partition === p).length),
          `partition ${p}`,
        );
      }
    } finally {
      await bridge?.stop();
      await producer.close();
      await opened.cleanup();
    }
  });

  it("bridges with examples/kafka-bridge.ini as shipped, only its addresses set by --set (docs/kafka-bridge.md)", {
    skip: !S3_ENDPOINT && "the example's [s3] needs a real S3",
  }, async () => {
    const opened = await (backend as NonNullable<typeof backend>).open();
    const topic = unique("inbound");
    const group = unique("group");
    await createTopic(topic, PARTITIONS);
    await new StoreWriter({ store: opened.store, prefix: opened.prefix }).createKeyspace("my_keyspace");
    const producer = new TestProducer(topic, PARTITIONS);
    let bridge: Awaited<ReturnType<typeof startBridge>> | undefined;
    try {
      await producer.produce(30);
      const overrides = [
        `s3.endpoint=${S3_ENDPOINT}`,
        `s3.bucket_name=${S3_BUCKET}`,
        `s3.object_prefix=${opened.prefix}`,
        `s3.access_key=${S3_ACCESS_KEY}`,
        `s3.secret_key=${S3_SECRET_KEY}`,
        // The example's session token "test" is for LocalStack; SeaweedFS refuses it.
        "s3.session_token=",
        "s3.security_token=",
        `kafka.topic=${topic}`,
        `kafka.group.id=${group}`,
        // The test broker: a second checkout's runs on a port of its own (scripts/services.sh).
        `kafka.bootstrap.servers=${KAFKA_BOOTSTRAP}`,
      ];
      bridge = await startBridge(loadBridgeConfig(EXAMPLE_CONFIG, overrides, {}), logger);
      const reader = new StoreReader({ store: opened.store, prefix: opened.prefix });
      // key_parser=RecordPartition, nonce_parser=RecordOffset, timestamp_parser=None.
      const stored = async () => {
        const keys = [];
        for (let p = 0; p < PARTITIONS; p++) {
          const page = await reader.readPage("my_keyspace", String(p), { maxSize: 1000 });
          keys.push(page.items.map((i) => `${i.nonce}:${Buffer.from(i.value).toString()}`));
        }
        return keys;
      };
      const expected = Array.from({ length: PARTITIONS }, (_, p) =>
        producer.produced.filter((r) => r.partition === p).map((r) => `${r.offset}:${r.value}`),
      );
      const deadline = Date.now() + 60_000;
      // The example flushes its batches every second (batch_flush_interval_millis=1000).
      while (JSON.stringify(await stored()) !== JSON.stringify(expected) && Date.now() < deadline) await sleep(200);
      assert.deepEqual(await stored(), expected);
    } finally {
      await bridge?.stop();
      await producer.close();
      await opened.cleanup();
    }
  });

  it("appends through the writer service and sends bad records to a dead-letter topic", async () => {
    const opened = await (backend as NonNullable<typeof backend>).open();
    const topic = unique("inbound");
    const deadLetters = unique("dead");
    const group = unique("group");
    await createTopic(topic, PARTITIONS);
    await createTopic(deadLetters, 1);
    const shard = await startWriterShard(
      {
        store: opened.url,
        name: "writer-0",
        shards: [{ name: "writer-0", address: "127.0.0.1:0" }],
        server: { listen: "127.0.0.1:0" },
      },
      logger,
    );
    const producer = new TestProducer(topic, PARTITIONS);
    let bridge: Awaited<ReturnType<typeof startBridge>> | undefined;
    try {
      await shard.writer.createKeyspace("bridged");
      await producer.produce(90, 10);
      const config = configFile(opened.url, topic, group, `[writer]\nshards="writer-0=${shard.address}"\n`).replace(
        /$/,
        "",
      );
      bridge = await startBridge(
        loadBridgeConfig(config, ["kafka.bad_record_policy=dead_letter", `kafka.dead_letter_topic=${deadLetters}`], {}),
        logger,
      );
      const reader = new StoreReader({ store: opened.store, prefix: opened.prefix });
      await waitUntilStored(reader, producer.produced);
      await bridge.stop();
      assert.equal(await assertStoredExactlyOnce(reader, producer.produced), 81);
      const dead = await consumeAll(deadLetters, 9);
      assert.deepEqual(
        dead.map((m) => m.value).sort(),
        producer.produced
          .filter((r) => r.timestamp === undefined)
          .map((r) => r.value)
          .sort(),
      );
      for (const m of dead) assert.match(m.error, /header "ts" is missing/);
    } finally {
      await bridge?.stop();
      await producer.close();
      await shard.close();
      await opened.cleanup();
    }
  });

  it("writes the shared log itself with [log] enabled, exactly once across a restart; without [log] it refuses that store", async () => {
    const opened = await (backend as NonNullable<typeof backend>).open();
    const topic = unique("inbound");
    const group = unique("group");
    await createTopic(topic, PARTITIONS);
    await new StoreWriter({ store: opened.store, prefix: opened.prefix }).createKeyspace("bridged");
    const producer = new TestProducer(topic, PARTITIONS);
    const config = configFile(opened.url, topic, group, "[log]\nenabled=true\nflush_interval_millis=20\n");
    const onLog = () => loadBridgeConfig(config, ["kafka.group.instance.id=member-1"], {});
    let bridge: Awaited<ReturnType<typeof startBridge>> | undefined;
    try {
      await producer.produce(150, 25);
      bridge = await startBridge(onLog(), logger);
      const reader = new StoreReader({
        store: opened.store,
        prefix: opened.prefix,
        logTail: new LogTail(opened.store, opened.prefix),
      });
      await waitUntilStored(reader, producer.produced);
      await bridge.stop();
      // Restarted, it fences its earlier instance's log and goes on where the group's offsets are.
      bridge = await startBridge(onLog(), logger);
      await producer.produce(90, 25);
      await waitUntilStored(reader, producer.produced);
      await bridge.stop();
      // 240 records, every 25th without its timestamp header (bad, skipped).
      assert.equal(await assertStoredExactlyOnce(reader, producer.produced), 240 - 9);
      const logs = await opened.store.list(`${opened.prefix}.logs/bridge-member-1/`);
      assert.ok(logs.objects.length > 0, "the records are in the bridge's own log");
      const perKey = await opened.store.list(`${opened.prefix}bridged/0/`);
      assert.deepEqual(perKey.objects, [], "and not materialized yet (60 s): no per-key commit");
      await assert.rejects(
        startBridge(loadBridgeConfig(config, ["log.enabled=false"], {}), logger),
        /is written through the shared log \(\[log\] enabled, docs\/log\.md\): set \[log\] enabled=true \(and \[kafka\] group\.instance\.id\)/,
      );
    } finally {
      await bridge?.stop();
      await producer.close();
      await opened.cleanup();
    }
  });

  it("stores a record another writer stored first once, and goes on (its append was fenced)", async () => {
    const opened = await (backend as NonNullable<typeof backend>).open();
    const topic = unique("inbound");
    const group = unique("group");
    await createTopic(topic, 1);
    // The partition's former owner in a rebalance, say: it stores records at the key too.
    const other = new StoreWriter({ store: opened.store, prefix: opened.prefix });
    await other.createKeyspace("bridged");
    const producer = new TestProducer(topic, 1);
    let bridge: Awaited<ReturnType<typeof startBridge>> | undefined;
    try {
      bridge = await startBridge(loadBridgeConfig(configFile(opened.url, topic, group), [], {}), logger);
      const stopped = bridge.done.then(() => {
        throw new Error("the bridge stopped");
      });
      const reader = new StoreReader({ store: opened.store, prefix: opened.prefix });
      await producer.produce(10);
      await Promise.race([waitUntilStored(reader, producer.produced), stopped]);
      // The next record, as the bridge will store it: the bridge's writer now knows a stale end of the key.
      await other.appendList("bridged", "0", [
        { value: Buffer.from("value-10"), nonce: 10n, timestamp: 1_700_000_000_010n },
      ]);
      await producer.produce(10);
      await Promise.race([waitUntilStored(reader, producer.produced), stopped]);
      assert.equal(await assertStoredExactlyOnce(reader, producer.produced), 20);
      await bridge.stop();
      assert.deepEqual(await committedOffsets(group, topic), new Map([[0, 20n]]));
    } finally {
      await bridge?.stop();
      await producer.close();
      await opened.cleanup();
    }
  });

  it("stays exactly once across kill -9 and restart, and while a second bridge joins and leaves the group", async () => {
    const opened = await (backend as NonNullable<typeof backend>).open();
    const topic = unique("inbound");
    const group = unique("group");
    await createTopic(topic, PARTITIONS);
    await new StoreWriter({ store: opened.store, prefix: opened.prefix }).createKeyspace("bridged");
    const config = configFile(opened.url, topic, group);
    const producer = new TestProducer(topic, PARTITIONS);
    let producing = true;
    const production = (async () => {
      while (producing) {
        await producer.produce(15);
        await sleep(30);
      }
    })();
    const bridges: BridgeProcess[] = [];
    try {
      let a = await startBridgeProcess(config);
      bridges.push(a);
      for (let kill = 0; kill < 2; kill++) {
        await sleep(1500 + Math.random() * 1500);
        a.child.kill("SIGKILL");
        await a.exited;
        a = await startBridgeProcess(config);
        bridges.push(a);
      }
      await sleep(1500);
      const b = await startBridgeProcess(config); // joins: the group rebalances
      bridges.push(b);
      await sleep(4000);
      b.child.kill("SIGTERM"); // leaves: flushes, commits, rebalances back
      assert.equal(await b.exited, 0, `the leaving bridge exits 0; it said:\n${b.stderr.slice(-30).join("\n")}`);
      await sleep(1000);
      producing = false;
      await production;
      const reader = new StoreReader({ store: opened.store, prefix: opened.prefix });
      await waitUntilStored(reader, producer.produced).catch((err: Error) => {
        // What the bridges said is the only clue to a stall.
        for (const [i, b] of bridges.entries()) console.log(`bridge ${i}:\n${b.stderr.slice(-30).join("\n")}`);
        throw err;
      });
      a.child.kill("SIGTERM");
      assert.equal(await a.exited, 0, `the last bridge exits 0; it said:\n${a.stderr.slice(-30).join("\n")}`);
      const stored = await assertStoredExactlyOnce(reader, producer.produced);
      assert.equal(stored, producer.produced.length);
      console.log(`kill -9 twice, one rebalance in and out: ${stored} records stored exactly once`);
    } finally {
      producing = false;
      await production;
      for (const b of bridges) if (b.child.exitCode === null) b.child.kill("SIGKILL");
      await producer.close();
      await opened.cleanup();
    }
  });
});
