// A client in another language, written from the proto alone: python/klstore_check.py
// generates its modules from proto/klstore/v1 with grpcio-tools and talks to real
// processes. What it stored is then read back through the TypeScript client.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { realpathSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { KlstoreClient } from "@klstore/client";
import { ShardRing } from "@klstore/sharding";
import { clusterForSuite } from "./support/cluster.ts";
import { ROOT, S3_ENDPOINT } from "./support/processes.ts";

const PYTHON = process.env.KLSTORE_TEST_PYTHON;

describe("a Python client generated from the proto", {
  skip: (!S3_ENDPOINT || !PYTHON) && "needs S3 and KLSTORE_TEST_PYTHON (scripts/test.sh sets both)",
}, () => {
  const cluster = clusterForSuite(2);

  it("routes by GetShards, appends, reads a page and a stream, and reads the error details", async () => {
    const { stdout } = await promisify(execFile)(PYTHON as string, [
      join(ROOT, "e2e/python/klstore_check.py"),
      "--writer",
      cluster().writers[1]?.address as string,
      "--reader",
      cluster().reader.address,
      "--proto-root",
      join(ROOT, "proto"),
      "--rpc-proto-root",
      realpathSync(join(ROOT, "node_modules/google-proto-files")),
      "--keyspace",
      "python",
    ]);
    const report = JSON.parse(stdout);
    const big = (1n << 100n) + 7n;
    assert.equal(report.writer_health, "SERVING");
    assert.equal(report.reader_health, "SERVING");
    // Each port lists only what it serves.
    assert.deepEqual(report.writer_reflected_services, ["grpc.health.v1.Health", "klstore.v1.WriterService"]);
    assert.deepEqual(report.reader_reflected_services, ["grpc.health.v1.Health", "klstore.v1.ReaderService"]);
    assert.equal(report.created_compression, "COMPRESSION_ZSTD");
    assert.deepEqual(report.append_outcomes, [{ offset: 0 }, { offset: 1 }, "duplicate"]);
    assert.deepEqual(report.session, [
      { sequence: 0, error: null, outcomes: 1 },
      { sequence: 1, error: 5, outcomes: 0 }, // NOT_FOUND, in band; the session goes on
      { sequence: 2, error: null, outcomes: 1 },
    ]);
    assert.deepEqual(
      report.page.map((i: { value: string; nonce: string }) => [i.value, i.nonce]),
      [
        ["two", String(big + 1n)],
        ["one", String(big)],
      ],
    );
    assert.equal(report.page[1].ts, 1_700_000_000_000);
    assert.deepEqual(report.stream, ["two"]);
    assert.equal(report.missing_keyspace, "NOT_FOUND");
    assert.deepEqual(report.missing_keyspace_details, {
      reason: "KEYSPACE_NOT_FOUND",
      domain: "klstore.dev",
      metadata: { keyspace: "no-such-keyspace" },
      resource: ["keyspace", "no-such-keyspace"],
    });
    assert.deepEqual(report.session_errors, [
      { reason: "KEYSPACE_NOT_FOUND", metadata: { keyspace: "no-such-keyspace" } },
    ]);

    // The shard list as configured, from the one shard Python was given, and the owners
    // Python computed from docs/sharding.md are the shards' own.
    assert.deepEqual(report.shards, cluster().shards);
    assert.equal(report.this_shard, "writer-1");
    const ring = new ShardRing(cluster().shards);
    const owners = Object.entries(report.owners as Record<string, string>);
    assert.equal(owners.length, 8);
    for (const [key, owner] of owners) assert.equal(owner, ring.ownerOf("python", key).name, key);
    assert.equal(new Set(owners.map(([, o]) => o)).size, 2, "the keys are spread over both shards");

    // The TypeScript client sees exactly what Python stored, 128-bit nonces intact.
    const client = new KlstoreClient({ writers: cluster().shardList, reader: cluster().reader.address });
    try {
      const page = await client.readPage("python", "py-key");
      assert.deepEqual(
        page.items.map((i) => [Buffer.from(i.value).toString(), i.nonce, i.timestamp === 1_700_000_000_000n]),
        [
          ["one", big, true],
          ["two", big + 1n, false],
        ],
      );
      const session = await client.readPage("python", "py-session");
      assert.deepEqual(
        session.items.map((i) => Buffer.from(i.value).toString()),
        ["s0", "s2"],
      );
    } finally {
      client.close();
    }
  });
});
