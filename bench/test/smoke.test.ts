// The benchmark's smoke mode, as part of the test suite: every scenario runs end to end
// against the real services and the report and chart are written. No timing is asserted.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";

const MAIN = resolve(import.meta.dirname, "../src/main.ts");
const ready =
  process.env.KLSTORE_TEST_S3_ENDPOINT && process.env.KLSTORE_TEST_KAFKA_BOOTSTRAP && process.env.KLSTORE_BENCH_REDIS;

describe("benchmark smoke run", { skip: !ready && "needs S3, Kafka and Redis (scripts/test.sh starts them)" }, () => {
  it("runs every scenario and writes the report with tables for every system and a chart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "klstore-bench-"));
    const out = join(dir, "benchmarks.md");
    await promisify(execFile)(process.execPath, [MAIN, "--smoke", "--out", out], { timeout: 280_000 });
    const report = readFileSync(out, "utf8");
    for (const writer of ["default writer", "shared log"]) {
      assert.match(
        report,
        new RegExp(
          `\\| 100 B ingest: items/s at least Kafka's \\| 100 B items, 1 key \\(${writer}\\) \\| [\\d,]+% \\| 100% \\| (yes|no) \\|`,
        ),
      );
    }
    assert.match(report, /\| 100 B items, 1 key, shared log \| [\d,]+ \| [\d,]+ \| [\d,]+ \| [\d,]+ \| – \|/);
    for (const command of ["klstore --version", "klstore stat \\(file:\\/\\/\\)", "klstore stat \\(s3:\\/\\/\\)"]) {
      assert.match(
        report,
        new RegExp(`\\| ${command} \\| warm \\| 2 \\| [\\d,]+ \\| [\\d,]+ \\| [\\d,]+ \\| [\\d,]+ \\|`),
      );
    }
    assert.match(
      report,
      /\| Bulk import: MB\/s at least 80% of raw S3 \| 1024 B values, 10 keys, 2,000 lines, klstore import of a jsonl file \| [\d,]+% \| 80% \| (yes|no) \|/,
    );
    for (const heading of [
      "## Targets",
      "## Where the CPU goes",
      "## Ingest",
      "## Storage cost of ingest",
      "## Seek as a key grows",
      "## Bulk import",
      "## CLI start-up",
      "## Append latency",
      "## Worker threads and shards",
      "## Memory",
      "## Sequential read",
      "**Machine:**",
      "**Versions:**",
    ]) {
      assert.ok(report.includes(heading), heading);
    }
    const systems = [
      "klstore AppendSession",
      "klstore AppendSession, seed batching (waits up to 1 s for 1 MB per key)",
      "klstore AppendSession, shared log",
      "klstore Append (unary, 32 in flight)",
      "raw S3 PutObject (1 MiB objects)",
      "Kafka producer (acks=all)",
      "Redis Streams XADD (pipelined)",
      "klstore ReadStream forwards",
      "klstore ReadStream backwards",
      "raw S3 GetObject (1 MiB objects)",
      "Kafka consumer",
      "Redis XRANGE",
      "Redis XREVRANGE",
      "klstore import (jsonl file)",
      "klstore bulk import engine (rows in memory)",
      // The peers' own tools (scripts/test.sh says where they are).
      ...(process.env.KLSTORE_BENCH_KAFKA_LIBS
        ? [
            "Kafka ProducerPerformance (own tool, acks=all)",
            "Kafka ConsumerPerformance (own tool)",
            "Redis redis-benchmark XADD (own tool, pipelined)",
          ]
        : []),
    ];
    for (const system of systems)
      assert.match(report, new RegExp(`\\| ${system.replace(/[()]/g, "\\$&")} \\| \\d`), system);
    assert.match(
      readFileSync(join(dir, "benchmarks/memory.svg"), "utf8"),
      /^<svg [\s\S]*writer[\s\S]*reader[\s\S]*compaction cache[\s\S]*object cache/,
    );
    assert.match(report, /Max\/min after the warm-up: writer \d/);
    const chart = readFileSync(join(dir, "benchmarks/ingest.svg"), "utf8");
    assert.match(chart, /^<svg /);
    for (const system of systems.slice(0, 5)) assert.ok(chart.includes(system), `chart legend: ${system}`);
    const svg = (name: string) => readFileSync(join(dir, "benchmarks", name), "utf8");
    assert.match(svg("seek.svg"), /^<svg [\s\S]*by offset[\s\S]*bound 2\*log2/);
    assert.match(svg("latency.svg"), /^<svg [\s\S]*p99\.9/);
    assert.match(svg("read.svg"), /^<svg [\s\S]*klstore ReadStream backwards/);
    // CPU per 100 MB: the servers' pids come from scripts/services.sh env, as scripts/test.sh sets them.
    const cpuRow = (system: string) =>
      report
        .split("\n")
        .find((line) => line.startsWith("| ingest, 100 B items, 1 key | ") && line.includes(`| ${system} |`));
    for (const system of ["klstore AppendSession", "raw S3 PutObject (1 MiB objects)", "Kafka producer (acks=all)"])
      assert.ok(cpuRow(system), `CPU row of ${system}`);
    assert.match(
      report,
      /\| scenario \| system \| MB\/s \| bench process \|[^\n]*\| total CPU-s per 100 MB \| cores busy \|/,
    );
    assert.match(report, /\| sequential read, one key \| klstore ReadStream forwards \| [\d.,]+ \| [\d.,–]+ \|/);
    assert.doesNotMatch(report, /\| ingest, [^|]+ \| [^|]*own tool/, "own tools have no CPU row");
    assert.match(svg("cpu.svg"), /^<svg [\s\S]*CPU-s per 100 MB[\s\S]*bench process/);
    for (const name of ["seek.svg", "latency.svg", "read.svg", "cpu.svg"])
      assert.ok(report.includes(`(benchmarks/${name})`), name);
  });
});
