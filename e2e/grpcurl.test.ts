// grpcurl against the real processes, with no .proto files: everything it needs comes from
// server reflection, and health checks go through grpc.health.v1 as Kubernetes probes do.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { ShardRing } from "@klstore/sharding";
import { clusterForSuite } from "./support/cluster.ts";
import { runCli, S3_ENDPOINT, scrape } from "./support/processes.ts";

const GRPCURL = process.env.KLSTORE_TEST_GRPCURL;

async function grpcurl(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(GRPCURL as string, ["-max-time", "10", ...args]);
  return stdout;
}

describe("grpcurl through reflection", {
  skip: (!S3_ENDPOINT || !GRPCURL) && "needs S3 and KLSTORE_TEST_GRPCURL (scripts/test.sh sets both)",
}, () => {
  const cluster = clusterForSuite(2, { metrics: true });

  it("lists and describes the services each port serves, and only those, and reports health", async () => {
    const writer = cluster().writers[0]?.address as string;
    const reader = cluster().reader.address;
    const list = async (address: string) => (await grpcurl("-plaintext", address, "list")).trim().split("\n");
    assert.deepEqual(await list(writer), ["grpc.health.v1.Health", "klstore.v1.WriterService"]);
    assert.deepEqual(await list(reader), ["grpc.health.v1.Health", "klstore.v1.ReaderService"]);
    // A service the port does not serve is not described there either (calls would be UNIMPLEMENTED).
    await assert.rejects(
      grpcurl("-plaintext", writer, "describe", "klstore.v1.ReaderService"),
      (err: Error & { stderr?: string }) => /Symbol not found: klstore\.v1\.ReaderService/.test(err.stderr ?? ""),
    );
    await assert.rejects(
      grpcurl("-plaintext", reader, "describe", "klstore.v1.WriterService"),
      (err: Error & { stderr?: string }) => /Symbol not found: klstore\.v1\.WriterService/.test(err.stderr ?? ""),
    );
    assert.match(
      await grpcurl("-plaintext", writer, "describe", "klstore.v1.WriterService"),
      /rpc AppendSession \( stream/,
    );
    assert.match(await grpcurl("-plaintext", writer, "describe", "klstore.v1.Uint128"), /uint64 high = 1/);
    // A map field (the reflection files are served as generated, not through protobufjs).
    assert.match(
      await grpcurl("-plaintext", writer, "describe", "klstore.v1.RequestError"),
      /map<string, string> metadata = 5/,
    );
    for (const served of [...cluster().writers, cluster().reader]) {
      const health = JSON.parse(await grpcurl("-plaintext", served.address, "grpc.health.v1.Health/Check"));
      assert.deepEqual(health, { status: "SERVING" });
    }
  });

  it("prints a failed call's google.rpc details (ErrorInfo, ResourceInfo, BadRequest) decoded, on both ports", async () => {
    const writer = cluster().writers[0]?.address as string;
    const reader = cluster().reader.address;
    const failure = async (address: string, method: string, request: string) => {
      const err = await grpcurl("-plaintext", "-d", request, address, method).then(
        (stdout) => assert.fail(`the call succeeded: ${stdout}`),
        (e: Error & { stderr?: string }) => e.stderr ?? "",
      );
      assert.doesNotMatch(err, /is not recognized/);
      return err;
    };
    const missing = await failure(reader, "klstore.v1.ReaderService/ReadPage", '{"keyspace":"absent","key":"k"}');
    assert.match(missing, /Code: NotFound/);
    assert.match(missing, /"@type": "type\.googleapis\.com\/google\.rpc\.ErrorInfo"/);
    assert.match(missing, /"reason": "KEYSPACE_NOT_FOUND"/);
    assert.match(missing, /"resourceType": "keyspace"/);
    const bad = await failure(writer, "klstore.v1.WriterService/Append", '{"keyspace":"","key":"k"}');
    assert.match(bad, /Code: InvalidArgument/);
    assert.match(bad, /"reason": "INVALID_ARGUMENT"/);
    assert.match(bad, /"@type": "type\.googleapis\.com\/google\.rpc\.BadRequest"/);
    assert.match(bad, /"fieldViolations": \[/);
    // RetryInfo (an UNAVAILABLE's delay) resolves too, with the Duration it imports.
    assert.match(
      await grpcurl("-plaintext", writer, "describe", "google.rpc.RetryInfo"),
      /\.google\.protobuf\.Duration retry_delay = 1/,
    );
  });

  it("appends and reads with JSON requests", async () => {
    const writer = cluster().writers[1]?.address as string;
    const reader = cluster().reader.address;
    await grpcurl("-plaintext", "-d", '{"keyspace":"curl"}', writer, "klstore.v1.WriterService/CreateKeyspace");
    const appended = JSON.parse(
      await grpcurl(
        "-plaintext",
        "-d",
        // bytes are base64 in protobuf JSON; 64-bit integers are strings.
        '{"keyspace":"curl","key":"k","insertions":[{"value":"aGVsbG8=","nonce":{"high":"1","low":"2"}},{"value":"aGVsbG8=","nonce":{"high":"1","low":"2"}}]}',
        writer,
        "klstore.v1.WriterService/Append",
      ),
    );
    assert.equal(appended.outcomes.length, 2);
    assert.ok("appended" in appended.outcomes[0]);
    assert.ok("duplicate" in appended.outcomes[1]);
    const page = JSON.parse(
      await grpcurl("-plaintext", "-d", '{"keyspace":"curl","key":"k"}', reader, "klstore.v1.ReaderService/ReadPage"),
    );
    assert.equal(page.items.length, 1);
    assert.equal(Buffer.from(page.items[0].value, "base64").toString(), "hello");
    assert.deepEqual(page.items[0].nonce, { high: "1", low: "2" });
    // A bad request is answered with its status code, which grpcurl prints and exits non-zero on.
    await assert.rejects(
      grpcurl("-plaintext", "-d", '{"keyspace":"nope","key":"k"}', reader, "klstore.v1.ReaderService/ReadPage"),
      (err: Error & { stderr?: string }) => /Code: NotFound/.test(err.stderr ?? ""),
    );
  });

  it("answers GetShards with the configured list (grpcurl, `klstore shards`), and the CLI routes by it", async () => {
    const { shards, writers, reader } = cluster();
    for (const [i, writer] of writers.entries()) {
      const answer = JSON.parse(await grpcurl("-plaintext", writer.address, "klstore.v1.WriterService/GetShards"));
      assert.deepEqual(answer, { shards, thisShard: `writer-${i}` });
    }
    const listed = await runCli(["--writer", writers[1]?.address as string, "shards"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      listed.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l)),
      shards.map((s, i) => ({ name: s.name, address: s.address, this_shard: i === 1 })),
    );

    // Given one shard's address, --discover-shards sends every append to its key's owner.
    const remote = ["--writer", writers[0]?.address as string, "--reader", reader.address, "--discover-shards"];
    assert.equal((await runCli([...remote, "keyspace", "create", "routed"])).code, 0);
    const ring = new ShardRing(shards);
    const keys = ["a", "b", "c", "d", "e", "f"];
    assert.ok(
      keys.some((k) => ring.ownerOf("routed", k).name === "writer-1"),
      "some keys are another shard's",
    );
    const forwarded = () => scrape(writers[0]?.metrics as string, "klstore_forwarded_requests_total");
    const before = await forwarded();
    for (const key of keys) {
      const appended = await runCli([...remote, "append", "routed", key, "v"]);
      assert.equal(appended.code, 0, appended.stderr);
    }
    assert.equal(await forwarded(), before, "the shard given forwarded nothing");
    for (const [i, writer] of writers.entries()) {
      const owned = keys.filter((k) => ring.ownerOf("routed", k).name === `writer-${i}`).length;
      assert.ok((await scrape(writer.metrics as string, "klstore_appended_items_total")) >= owned, `writer-${i}`);
    }
  });
});
