// One command, every scenario, one report: `scripts/bench.sh` (or `--smoke` for the quick
// run the test suite makes). klstore runs as real processes (`klstore serve`) on the same
// SeaweedFS as the raw-S3 ceiling; Kafka and Redis are the local test services.

import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { KlstoreClient } from "@klstore/client";
import { startCluster } from "../../e2e/support/cluster.ts";
import { ensureBucket, S3_ENDPOINT, serve, stop, writeConfig } from "../../e2e/support/processes.ts";
import { type Bar, barChart, lineChart, stackedBarChart } from "./charts.ts";
import { CPU_ROLES, servicePid, unwatch, watch } from "./cpu.ts";
import { bulkImport, IMPORT_SCALE } from "./klstore/bulk-import.ts";
import { CLI_STARTUP_RUNS, cliStartup, startupTable } from "./klstore/cli-startup.ts";
import { difference, storageCounters, storedBytes } from "./klstore/cost.ts";
import { APPEND_SESSION_WINDOW, appendSession, readStream, unaryAppend } from "./klstore/drivers.ts";
import { appendLatency } from "./klstore/latency.ts";
import { flatness, MEMORY_WARM_UP, memoryUnderLoad } from "./klstore/memory.ts";
import { seekCosts } from "./klstore/seek.ts";
import type { Throughput } from "./measure.ts";
import { kafkaConsume, kafkaProduce } from "./peers/kafka.ts";
import {
  kafkaConsumerPerformance,
  kafkaProducerPerformance,
  peerToolsFromEnv,
  redisBenchmarkXadd,
} from "./peers/own-tools.ts";
import { rawGet, rawPut, testS3Target } from "./peers/raw-s3.ts";
import { redisAdd, redisRange } from "./peers/redis.ts";
import {
  cpuPer100Megabytes,
  cpuTable,
  fmt,
  markdownTable,
  renderReport,
  type Section,
  type TargetCheck,
  targetTable,
} from "./report.ts";
import { WARM_UP_SCALE, warmUpIngest, warmUpReader } from "./warm-up.ts";

const ROOT = resolve(import.meta.dirname, "../..");

const { values: args } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    out: { type: "string", default: join(ROOT, "docs/benchmarks.md") },
  },
});

const KAFKA = process.env.KLSTORE_TEST_KAFKA_BOOTSTRAP;
const REDIS = process.env.KLSTORE_BENCH_REDIS;
if (!S3_ENDPOINT || !KAFKA || !REDIS) {
  throw new Error(
    "needs KLSTORE_TEST_S3_ENDPOINT, KLSTORE_TEST_KAFKA_BOOTSTRAP and KLSTORE_BENCH_REDIS: run scripts/bench.sh",
  );
}

const scale = args.smoke
  ? {
      sizes: [100],
      keys: [1, 10],
      items: { 100: 300, 1024: 100 } as Record<number, number>,
      seek: [1000],
      scalingItems: 200,
      memorySeconds: 3,
      memoryWarmUp: MEMORY_WARM_UP.smoke,
      latencySeconds: 1,
      import: IMPORT_SCALE.smoke,
      warmUp: WARM_UP_SCALE.smoke,
    }
  : {
      sizes: [100, 1024],
      keys: [1, 100, 10_000],
      // Enough for a steady state (100,000 items of 100 B took under a second, mostly warm-up),
      // except over 10,000 keys, where every key's first commit dominates anyway.
      items: { 100: 500_000, 1024: 200_000 } as Record<number, number>,
      seek: [1000, 10_000, 100_000, 1_000_000],
      scalingItems: 30_000,
      memorySeconds: 40,
      memoryWarmUp: MEMORY_WARM_UP.full,
      latencySeconds: 10,
      import: IMPORT_SCALE.full,
      warmUp: WARM_UP_SCALE.full,
    };

const peerTools = peerToolsFromEnv();
if (!peerTools)
  process.stderr.write(
    "bench: KLSTORE_BENCH_KAFKA_LIBS / KLSTORE_BENCH_REDIS_ROOT unset: skipping the peers' own tools\n",
  );

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

/**
 * The writer shard's defaults commit a key's group as soon as its previous commit ends
 * (latency first). The seed's batching (a group waits up to 1 s for 1 MB) trades latency
 * for fewer, larger objects; a second writer runs it beside the default one.
 */
const SEED_BATCHING = ["batcher.batch_flush_interval_millis=1000"];
const SEED_BATCHING_ROW = "klstore AppendSession, seed batching (waits up to 1 s for 1 MB per key)";
/** A third writer on the shared log (docs/log.md; `[log] enabled`): one segment PUT per lane and flush. */
const SHARED_LOG = ["log.enabled=true"];
const SHARED_LOG_ROW = "klstore AppendSession, shared log";
const runId = `${Date.now().toString(36)}`;

async function main(): Promise<void> {
  await ensureBucket();
  const config = writeConfig();
  const cluster = await startCluster(config.file, 1, { metrics: true });
  const seedBatching = await startCluster(config.file, 1, { sets: SEED_BATCHING });
  // A store of its own: writers and readers of a store written through the log must all have
  // [log] enabled (docs/log.md, "Older buckets"), and the other processes here have not.
  const logConfig = writeConfig();
  const sharedLog = await startCluster(logConfig.file, 1, { metrics: true, sets: SHARED_LOG });
  const writerMetrics = cluster.writers[0]?.metrics as string;
  const logWriterMetrics = sharedLog.writers[0]?.metrics as string;
  for (const c of [cluster, seedBatching, sharedLog]) {
    for (const w of c.writers) watch(CPU_ROLES.writer, w.child.pid);
    watch(CPU_ROLES.reader, c.reader.child.pid);
  }
  watch(CPU_ROLES.s3, servicePid("KLSTORE_BENCH_S3_PID"));
  watch(CPU_ROLES.kafka, servicePid("KLSTORE_BENCH_KAFKA_PID"));
  watch(CPU_ROLES.redis, servicePid("KLSTORE_BENCH_REDIS_PID"));
  const costRows: string[][] = [];
  const s3 = testS3Target();
  const admin = new KlstoreClient({ writers: cluster.shards, reader: cluster.reader.address });
  const logAdmin = new KlstoreClient({ writers: sharedLog.shards, reader: sharedLog.reader.address });
  const ingestTables: Section["tables"][number][] = [];
  const ingestBars: Bar[] = [];
  let readSetup:
    | { keyspace: string; items: number; size: number; rawKeys: string[]; topic: string; stream: string }
    | undefined;
  try {
    log("warm-up (not measured)");
    const warmKey = await warmUpIngest(
      {
        writerClusters: [cluster.shards, seedBatching.shards, sharedLog.shards],
        s3,
        rawPrefix: config.prefix,
        kafka: KAFKA as string,
        redis: REDIS as string,
        createKeyspace: (name, cluster) => (cluster === 2 ? logAdmin : admin).createKeyspace(name),
      },
      scale.warmUp,
      runId,
    );
    await warmUpReader(cluster.reader.address, warmKey);
    for (const size of scale.sizes) {
      for (const keys of scale.keys) {
        const items = keys >= 10_000 ? Math.min(100_000, scale.items[size] as number) : (scale.items[size] as number);
        const label = `${size} B items, ${keys.toLocaleString("en-US")} key${keys === 1 ? "" : "s"}`;
        log(label);
        const ks = `bench-${runId}-${size}-${keys}`;
        await admin.createKeyspace(ks);
        await admin.createKeyspace(`${ks}-unary`);
        await admin.createKeyspace(`${ks}-seed`);
        await logAdmin.createKeyspace(`${ks}-log`);
        const rows: Throughput[] = [];
        const before = await storageCounters(writerMetrics);
        rows.push(await appendSession(cluster.shards, ks, keys, items, size));
        // Compaction finishes inside the commit, so the counters are complete once acked.
        const cost = difference(await storageCounters(writerMetrics), before);
        const stored = await storedBytes(s3, `${config.prefix}${ks}/`);
        const perMillion = (n: number) => fmt((n / items) * 1e6);
        costRows.push([
          label,
          perMillion(cost.put),
          perMillion(cost.get),
          perMillion(cost.list),
          perMillion(cost.delete),
          `${fmt(((stored / items) * 1e6) / 1e6, 1)} MB`,
          `${fmt(cost.bytesWritten / (items * size), 2)}×`,
        ]);
        rows.push(await appendSession(seedBatching.shards, `${ks}-seed`, keys, items, size, SEED_BATCHING_ROW));
        const logBefore = await storageCounters(logWriterMetrics);
        rows.push(await appendSession(sharedLog.shards, `${ks}-log`, keys, items, size, SHARED_LOG_ROW));
        // Materialization comes later (materialize_interval_millis): these are the ingest's own.
        const logCost = difference(await storageCounters(logWriterMetrics), logBefore);
        costRows.push([
          `${label}, shared log`,
          perMillion(logCost.put),
          perMillion(logCost.get),
          perMillion(logCost.list),
          perMillion(logCost.delete),
          "–",
          `${fmt(logCost.bytesWritten / (items * size), 2)}×`,
        ]);
        rows.push(await unaryAppend(cluster.shards, `${ks}-unary`, keys, items, size));
        const raw = await rawPut(s3, `${config.prefix}${ks}/`, items, items * size);
        rows.push(raw.result);
        const topic = `bench-${runId}-${size}-${keys}`;
        rows.push(await kafkaProduce(KAFKA as string, topic, keys, items, size));
        const stream = `bench-${runId}-${size}-${keys}`;
        rows.push(await redisAdd(REDIS as string, stream, keys, items, size));
        if (peerTools) {
          rows.push(await kafkaProducerPerformance(peerTools, KAFKA as string, `${topic}-own`, items, size));
          rows.push(await redisBenchmarkXadd(peerTools, REDIS as string, `${stream}-own`, items, size));
        }
        ingestTables.push({ caption: label, rows, baseline: raw.result.system });
        for (const r of rows) ingestBars.push({ group: label, system: r.system, value: Math.round(r.itemsPerSecond) });
        if (keys === 1) readSetup = { keyspace: ks, items, size, rawKeys: raw.keys, topic, stream: `${stream}:0` };
      }
    }

    const chartDir = join(resolve(args.out, ".."), "benchmarks");
    mkdirSync(chartDir, { recursive: true });
    const chartFile = join(chartDir, "ingest.svg");
    writeFileSync(chartFile, await barChart("Durable ingest, items/s (higher is better)", "items/s", ingestBars));

    const readRows: Throughput[] = [];
    if (readSetup) {
      const r = readSetup;
      log(`sequential read of ${r.items} items of ${r.size} B`);
      // Every byte from S3, as a first read: a reader without its object cache. Then the
      // cluster's reader, whose cache (256 MiB by default) holds the key after one pass.
      const uncached = await serve("reader", config.file, ["reader.listen=127.0.0.1:0", "reader.object_cache_bytes=0"]);
      watch(CPU_ROLES.reader, uncached.child.pid);
      try {
        await warmUpReader(uncached.address, warmKey);
        for (const order of ["forwards", "backwards"] as const) {
          readRows.push(await readStream(uncached.address, r.keyspace, "key-0", r.items, r.size, order));
        }
      } finally {
        unwatch(uncached.child.pid);
        await stop(uncached);
      }
      await readStream(cluster.reader.address, r.keyspace, "key-0", r.items, r.size, "forwards");
      const cached = await readStream(cluster.reader.address, r.keyspace, "key-0", r.items, r.size, "forwards");
      readRows.push({ ...cached, system: `${cached.system}, cached in the reader` });
      readRows.push(await rawGet(s3, r.rawKeys, r.items, r.items * r.size));
      readRows.push(await kafkaConsume(KAFKA as string, r.topic, r.items, r.size));
      if (peerTools)
        readRows.push(await kafkaConsumerPerformance(peerTools, KAFKA as string, r.topic, r.items, r.size));
      readRows.push(await redisRange(REDIS as string, r.stream, r.items, r.size, "forwards"));
      readRows.push(await redisRange(REDIS as string, r.stream, r.items, r.size, "backwards"));
    }

    const checks: TargetCheck[] = [];
    const row = (rows: readonly Throughput[], prefix: string) => rows.find((r) => r.system.startsWith(prefix));
    for (const t of ingestTables) {
      for (const [prefix, writer] of [
        ["klstore AppendSession", "default writer"],
        [SEED_BATCHING_ROW, "seed batching"],
        [SHARED_LOG_ROW, "shared log"],
      ] as const) {
        const session = t.rows.find((r) => r.system === prefix) as Throughput;
        const scenario = `${t.caption} (${writer})`;
        if (t.caption.startsWith("100 B")) {
          // Kafka at its best on this machine: its own tool or the Node producer, whichever is faster.
          const kafka = Math.max(...t.rows.filter((r) => r.system.startsWith("Kafka")).map((r) => r.itemsPerSecond));
          checks.push({
            target: "100 B ingest: items/s at least Kafka's",
            scenario,
            measured: session.itemsPerSecond / kafka,
            required: 1,
          });
        } else {
          const raw = row(t.rows, "raw S3 PutObject") as Throughput;
          checks.push({
            target: "1 KiB ingest: MB/s at least 70% of raw S3",
            scenario,
            measured: session.megabytesPerSecond / raw.megabytesPerSecond,
            required: 0.7,
          });
        }
      }
    }
    const rawRead = row(readRows, "raw S3 GetObject");
    for (const order of ["forwards", "backwards"]) {
      const read = row(readRows, `klstore ReadStream ${order}`);
      if (read && rawRead) {
        checks.push({
          target: "Sequential read: MB/s at least 80% of raw GET",
          scenario: `one key, ${order}`,
          measured: read.megabytesPerSecond / rawRead.megabytesPerSecond,
          required: 0.8,
        });
      }
    }

    const imp = scale.import;
    const importLabel = `${imp.size} B values, ${imp.keys} keys, ${fmt(imp.items)} lines`;
    log(`bulk import: ${importLabel}`);
    const importRows = await bulkImport(s3, config.file, config.prefix, runId, imp);
    const importRaw = await rawPut(s3, `${config.prefix}import-raw-${runId}/`, imp.items, imp.items * imp.size);
    importRows.push(importRaw.result);
    checks.push({
      target: "Bulk import: MB/s at least 80% of raw S3",
      scenario: `${importLabel}, klstore import of a jsonl file`,
      measured: (importRows[0] as Throughput).megabytesPerSecond / importRaw.result.megabytesPerSecond,
      required: 0.8,
    });

    log("CLI start-up");
    const startup = cliStartup({
      runs: args.smoke ? CLI_STARTUP_RUNS.smoke : CLI_STARTUP_RUNS.full,
      s3Store: `s3://${s3.bucket}/${config.prefix}cli-startup-${runId}/?endpoint=${encodeURIComponent(s3.endpoint)}&path_style=true&access_key=${s3.accessKey}&secret_key=${s3.secretKey}`,
    });

    log("append latency at fixed offered loads");
    const latencyKs = `bench-${runId}-latency`;
    await admin.createKeyspace(latencyKs);
    const latency = await appendLatency(cluster.shards, latencyKs, scale.latencySeconds);

    log("workers off, and 3 shards");
    const scalingRows: Throughput[] = [];
    const variants: { name: string; writers: number; sets: string[] }[] = [
      { name: "1 shard, 1 worker thread", writers: 1, sets: [] },
      { name: "1 shard, no worker threads (inline)", writers: 1, sets: ["batcher.writer_thread_count=0"] },
      { name: "3 shards, 1 worker thread each", writers: 3, sets: [] },
    ];
    for (const v of variants) {
      const c = await startCluster(config.file, v.writers, { sets: v.sets });
      try {
        const ks = `bench-${runId}-scaling-${v.writers}-${v.sets.length}`;
        const setup = new KlstoreClient({ writers: c.shards, reader: c.reader.address });
        await setup.createKeyspace(ks);
        setup.close();
        const r = await appendSession(c.shards, ks, 100, scale.scalingItems, 1024);
        scalingRows.push({ ...r, system: `klstore AppendSession, ${v.name}` });
      } finally {
        await c.stop();
      }
    }

    log(`memory over ${scale.memorySeconds} s of ingest with a slow follower, after a warm-up`);
    const memoryKs = `bench-${runId}-memory`;
    await admin.createKeyspace(memoryKs);
    // Fresh processes: the cluster's reader still caches the earlier read scenario's key, and
    // its later release showed as a drop of 200 MiB in one run, which is not what is measured.
    const fresh = await startCluster(config.file, 1, { metrics: true });
    const memory = await memoryUnderLoad({
      shards: fresh.shards,
      reader: fresh.reader.address,
      writerMetrics: fresh.writers[0]?.metrics as string,
      readerMetrics: fresh.reader.metrics as string,
      keyspace: memoryKs,
      warmUp: scale.memoryWarmUp,
      durationSeconds: scale.memorySeconds,
    }).finally(() => fresh.stop());
    const memoryChart = join(chartDir, "memory.svg");
    writeFileSync(
      memoryChart,
      await lineChart("RSS during sustained ingest with a slow follower", "seconds", "MiB", [
        ...memory.seconds.map((x, i) => ({ series: "writer", x, y: memory.writerMiB[i] as number })),
        ...memory.seconds.map((x, i) => ({ series: "reader", x, y: memory.readerMiB[i] as number })),
        ...memory.seconds.map((x, i) => ({
          series: "writer's compaction cache",
          x,
          y: memory.writerCacheMiB[i] as number,
        })),
        ...memory.seconds.map((x, i) => ({
          series: "reader's object cache",
          x,
          y: memory.readerCacheMiB[i] as number,
        })),
      ]),
    );
    for (const name of ["writer", "reader"] as const) {
      checks.push({
        target: "Bounded memory: RSS flat within 20% after warm-up (1.2 ÷ max/min)",
        scenario: `${name}, ${scale.memorySeconds} s after a ${fmt(memory.warmUpSeconds)} s warm-up`,
        measured: 1.2 / flatness(memory, name),
        required: 1,
      });
    }

    log(`seeks as a key grows to ${scale.seek.at(-1)} items`);
    const seeks = await seekCosts(s3, `${config.prefix}seek-${runId}/`, scale.seek);
    for (const r of seeks) {
      checks.push({
        target: "Seek: requests within 2*log2(objects)+2 (bound ÷ worst seek)",
        scenario: `by ${r.by}, ${fmt(r.items)} items (${r.objects} objects), worst of 20`,
        measured: r.bound / Math.max(r.maxRequests, 1),
        required: 1,
      });
    }

    const seekChart = join(chartDir, "seek.svg");
    writeFileSync(
      seekChart,
      await lineChart(
        "Storage requests per seek as a key grows (worst of 20)",
        "data objects in the key (log scale)",
        "requests",
        [
          ...seeks.map((r) => ({ series: `by ${r.by}`, x: r.objects, y: r.maxRequests })),
          ...seeks
            .filter((r) => r.by === "offset")
            .map((r) => ({ series: "bound 2*log2(objects)+2", x: r.objects, y: r.bound })),
        ],
        { logX: true },
      ),
    );
    const latencyChart = join(chartDir, "latency.svg");
    writeFileSync(
      latencyChart,
      await barChart(
        "Append latency by offered load (ms, lower is better)",
        "ms",
        latency.flatMap((r) =>
          (
            [
              ["p50", r.p50],
              ["p99", r.p99],
              ["p99.9", r.p999],
            ] as const
          )
            .filter(([, v]) => v > 0)
            .map(([system, value]) => ({ group: r.load, system, value: Number(value.toFixed(1)) })),
        ),
      ),
    );
    const readChart = join(chartDir, "read.svg");
    writeFileSync(
      readChart,
      await barChart(
        "Sequential read of one key, MB/s (higher is better)",
        "MB/s",
        readRows.map((r) => ({ group: "one key", system: r.system, value: Number(r.megabytesPerSecond.toFixed(1)) })),
      ),
    );
    // Where the cores went in the scenarios the throughput targets score (own tools excluded:
    // they run as processes of their own, whose CPU is not read).
    const cpuRows = [
      ...ingestTables.flatMap((t) => t.rows.map((row) => ({ scenario: `ingest, ${t.caption}`, row }))),
      ...readRows.map((row) => ({ scenario: "sequential read, one key", row })),
      ...importRows.map((row) => ({ scenario: `bulk import, ${importLabel}`, row })),
    ].filter(({ row }) => row.cpu);
    const cpuChart = join(chartDir, "cpu.svg");
    writeFileSync(
      cpuChart,
      await stackedBarChart(
        "CPU-seconds per 100 MB moved, by process (lower is better)",
        "CPU-s per 100 MB",
        cpuRows.flatMap(({ scenario, row }) =>
          [...cpuPer100Megabytes(row)]
            .filter(([, value]) => value >= 0.005)
            .map(([part, value]) => ({ group: scenario, system: row.system, part, value: Number(value.toFixed(3)) })),
        ),
      ),
    );
    const chartLink = (file: string) => relative(resolve(args.out, ".."), file);
    const relativeChart = chartLink(chartFile);
    const sections: Section[] = [
      {
        title: "Targets",
        text:
          "Where klstore stands against the targets, from the tables below (klstore's AppendSession for ingest). " +
          "Every scenario the issue asks for is measured below; targets without a ratio (latency) are reported, not scored.",
        markdown: targetTable(checks),
        tables: [],
        charts: [],
      },
      {
        title: "Where the CPU goes",
        text:
          `This machine has ${availableParallelism()} cores, and every process of every system shares them: this bench ` +
          "process (the client of every system, and the import engine), klstore's writer or reader, the S3 server, the " +
          "broker. For the scenarios the throughput targets score: each process's CPU time during the row (utime + " +
          "stime from /proc), per 100 MB moved, and how many cores the row kept busy on average. A row that keeps " +
          "every core busy goes faster only by spending less CPU per MB, so between two such rows MB/s follows the " +
          "inverse of their totals; a row that leaves cores idle is waiting instead (the seed-batching rows wait up to " +
          "1 s for a group to fill). Over 10,000 keys the cost is per request: every key's first commit makes requests " +
          "of its own, and each costs CPU in the writer and in the S3 server. klstore's paths cross one process more than the raw-S3 ceiling (client, klstore " +
          "server, S3 server; against client, S3 server), and that process receives and sends every byte once more. " +
          "The peers' own tools are left out: they run as processes of their own.",
        markdown: cpuTable(cpuRows),
        tables: [],
        charts: [{ file: chartLink(cpuChart), alt: "CPU-seconds per 100 MB by process, for each system" }],
      },
      {
        title: "Ingest",
        text:
          "Durable items/s and MB/s: klstore through the gRPC writer (AppendSession, and unary Append for contrast), each " +
          "acknowledgement after the batch is stored on S3; the raw-S3 ceiling writes the same bytes as 1 MiB objects; " +
          "Kafka's producer waits for acks=all; Redis appends with fsync every second. The last column is MB/s as a share " +
          "of the raw-S3 ceiling. The peers' own tools (Kafka's ProducerPerformance, redis-benchmark) write to one topic " +
          "or stream without keys; the 100 B target is scored against the faster of the two Kafka rows.",
        tables: ingestTables,
        charts: [{ file: relativeChart, alt: "ingest items per second by system and scenario" }],
      },
      {
        title: "Storage cost of ingest",
        text:
          "Per million items appended through AppendSession (each scenario above): S3 requests by operation, from the " +
          "writer's own counters; bytes left stored (data objects after compaction, claims, watermarks); and write " +
          "amplification, the bytes PUT (batches, compacted rewrites, claims) over the bytes of the values.",
        markdown: markdownTable(
          ["scenario", "PUT", "GET", "LIST", "DELETE", "stored", "write amplification"],
          costRows,
        ),
        tables: [],
        charts: [],
      },
      {
        title: "Seek as a key grows",
        text:
          "20 seeks to random positions per row, each a fresh reader (no cache) reading one item from the found " +
          "position, through the engine on the same S3 server; 64 B values appended 10,000 per call and compacted " +
          "by the writer's defaults. Requests are LISTs plus GETs; the bound is 2*log2(objects)+2.",
        markdown: markdownTable(
          ["items", "objects", "by", "mean requests", "max requests", "bound", "mean ms"],
          seeks.map((r) => [
            fmt(r.items),
            fmt(r.objects),
            r.by,
            fmt(r.meanRequests, 1),
            fmt(r.maxRequests),
            fmt(r.bound, 1),
            fmt(r.meanMillis, 1),
          ]),
        ),
        tables: [],
        charts: [{ file: chartLink(seekChart), alt: "requests per seek against objects in the key, with the bound" }],
      },
      {
        title: "Bulk import",
        text:
          "`klstore import` of one jsonl file into a fresh keyspace, as its own process, timed by its summary (process " +
          "start-up excluded): a check pass (every line parsed and validated, the file hashed into its import id; the " +
          "rows are kept, as the file fits in the import's 256 MiB buffer), then the import (lines grouped per key into 1 MiB objects, committed through the writer's fencing, 12 commits in " +
          "flight). Beside it the import engine fed rows already in memory, and the raw-S3 ceiling writing the same bytes " +
          "as 1 MiB objects in the same run. Everything shares this machine's cores with the S3 server.",
        tables: [{ caption: importLabel, rows: importRows, baseline: importRaw.result.system }],
        charts: [],
      },
      {
        title: "CLI start-up",
        text:
          "Short `bin/klstore` commands, each its own process as a user runs them, in a row: `--version`, and a " +
          "direct-mode `stat` of a key on a file:// store and on the S3 server. Each command loads only the modules it " +
          "needs (a file:// stat loads neither the S3 SDK nor gRPC), and bin/klstore keeps Node's compile cache in " +
          "~/.cache/klstore/compile-cache: warm is every run after the first, cold an empty cache (the first run after " +
          "an install or an upgrade), off without one. Wall time and CPU are the launcher's bash and node together; " +
          "peak RSS is node's. The last row is the launcher's check of Node and the installed workspace alone.",
        markdown: startupTable(startup),
        tables: [],
        charts: [],
      },
      {
        title: "Append latency",
        text:
          `Unary Append of one 100 B item to one of 100 keys, acknowledged once durable. Saturation is measured ` +
          `closed-loop for ${scale.latencySeconds} s; each load below is then offered open-loop for ` +
          `${scale.latencySeconds} s, and latency runs from each request's scheduled send time to its acknowledgement.`,
        markdown: markdownTable(
          ["offered load", "offered/s", "achieved/s", "p50 ms", "p99 ms", "p99.9 ms"],
          latency.map((r) => [
            r.load,
            fmt(r.offeredPerSecond),
            fmt(r.achievedPerSecond),
            r.p50 ? fmt(r.p50, 1) : "–",
            r.p99 ? fmt(r.p99, 1) : "–",
            r.p999 ? fmt(r.p999, 1) : "–",
          ]),
        ),
        tables: [],
        charts: [{ file: chartLink(latencyChart), alt: "append latency percentiles by offered load" }],
      },
      {
        title: "Worker threads and shards",
        text:
          "AppendSession of 1 KiB items over 100 keys, on separate clusters: the piscina pool on and off, and 1 vs 3 " +
          "writer shards (the client opens one session per shard and routes each key to its owner). All on this " +
          "machine's cores, so more shards add processes, not hardware. The pool runs compaction merges (zstd " +
          "included); batches are serialized on the main thread either way, a copy that costs less than handing " +
          "the records to a thread (docs/architecture.md).",
        tables: [{ caption: "1 KiB items, 100 keys", rows: scalingRows }],
        charts: [],
      },
      {
        title: "Memory",
        text:
          "The RSS of a freshly started writer and reader, once a second, during AppendSession ingest " +
          `(1 KiB items, 100 keys; ${fmt(memory.itemsWritten)} items) while a follower of one of the keys takes at ` +
          `most one 100-item message per 20 ms (${fmt(memory.itemsFollowed)} items followed). ` +
          "Both processes keep bounded caches that fill under this load (the writer the bodies of objects it will " +
          "merge, up to compaction_cache_bytes; the reader the objects it served, up to object_cache_bytes), and " +
          "RSS grows while they fill. The warm-up therefore lasts until neither cache reached a new peak for " +
          `${scale.memoryWarmUp.settledSamples} s (at least ${scale.memoryWarmUp.minSeconds} s, at most ${scale.memoryWarmUp.maxSeconds} s): ` +
          `${fmt(memory.warmUpSeconds)} s in this run, after which ${scale.memorySeconds} s are measured. ` +
          `Max/min after the warm-up: writer ${fmt(flatness(memory, "writer"), 2)}, reader ${fmt(flatness(memory, "reader"), 2)}.`,
        tables: [],
        charts: [{ file: chartLink(memoryChart), alt: "writer and reader RSS over time" }],
      },
      {
        title: "Sequential read",
        text:
          "One key read from start to end (and end to start) through the reader's ReadStream, beside GetObject of the " +
          "same bytes as 1 MiB objects, a Kafka consumer of the same records and Redis XRANGE / XREVRANGE in pages of 1000. " +
          "The two ReadStream rows scored against the target read every object from S3 (a reader with its object cache " +
          "off); the cached row is a second pass through a reader whose cache holds the key.",
        tables:
          readRows.length > 0
            ? [{ caption: "one key", rows: readRows, baseline: "raw S3 GetObject (1 MiB objects)" }]
            : [],
        charts: readRows.length > 0 ? [{ file: chartLink(readChart), alt: "sequential read MB/s by system" }] : [],
      },
    ];
    writeFileSync(
      args.out,
      renderReport({
        mode: args.smoke ? "smoke" : "full",
        command: args.smoke ? "scripts/bench.sh --smoke" : "scripts/bench.sh",
        versions: {
          Node: process.versions.node,
          "SeaweedFS (S3)": "4.48",
          "Apache Kafka": "4.3.1 (KRaft, 1 node)",
          Redis: "7.0.15 (Debian 12)",
        },
        configuration: [
          "klstore: 1 writer shard and 1 reader, each its own `klstore serve` process; batching writer with 1 worker thread; writes acknowledged once durable; " +
            `AppendSession with up to ${fmt(APPEND_SESSION_WINDOW)} requests of 100 items in flight. ` +
            "Appends and reads use the API's packed forms (one byte string of items per request or page, as the TypeScript client does). Writer shard defaults: " +
            "a key's next group commits as soon as its previous one is stored, at most 32 commits at once, objects of at most 8 MiB. " +
            "The seed-batching rows come from a second writer process whose groups wait up to 1 s for 1 MB per key (`batch_flush_interval_millis=1000`), " +
            "the shared-log rows from a third with `[log] enabled=true` (docs/log.md: one segment PUT per lane and flush for every key; its storage cost row counts the ingest, not the materialization that follows).",
          "Single scenarios, for rounds and settings of their own (same services): `node bench/src/ingest-only.ts`, " +
            "`node bench/src/read-only.ts`, `node bench/src/import-only.ts`, `node bench/src/cli-startup.ts`.",
          "Raw S3: @aws-sdk/client-s3 from Node, 8 requests in flight.",
          "Bulk import: `klstore import` in direct mode on the same S3 server, default settings (1 MiB objects, 256 MiB buffer, 12 commits in flight).",
          "Kafka: @platformatic/kafka producer, acks=all, batches of 500, 8 in flight; topic of 3 partitions.",
          "Redis: node-redis, XADD auto-pipelined 1000 at a time, 4 batches in flight; appendonly yes, appendfsync everysec.",
          "Peers' own tools: Kafka's ProducerPerformance (acks=all, default batching) and ConsumerPerformance from the broker's jars; " +
            "redis-benchmark (one connection, pipeline 1000). Their rates are their own reports.",
          "All servers on 127.0.0.1 on this machine, sharing its cores with the load generator.",
          `Warm-up, not measured: before the first scenario every driver runs once on ${fmt(scale.warmUp.items)} items (klstore's AppendSession on both writers, ` +
            "unary Append, raw PUT and GET, the Kafka producer and consumer, Redis XADD and XRANGE), and each reader process streams a key forwards and backwards before it is measured. " +
            "klstore's processes start with the run while the peers' servers have been running, so without it the first rows timed V8 compiling klstore's hot paths.",
        ],
        sections,
      }),
    );
    log(`wrote ${args.out} and ${chartFile}`);
  } finally {
    admin.close();
    logAdmin.close();
    await seedBatching.stop();
    await sharedLog.stop();
    await cluster.stop();
  }
}

await main();
