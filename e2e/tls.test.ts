// TLS and mutual TLS on every gRPC port, configured from the config file: clients must
// present a certificate the configured CA signed, and shards forward to each other over
// the same mutual TLS, trusting a forwarded call only from a peer shard's certificate.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { Client, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { KlstoreClient } from "@klstore/client";
import { AppendRequestSchema, CHANNEL_OPTIONS, callUnary, InsertionSchema, WriterService } from "@klstore/proto";
import { ShardRing } from "@klstore/sharding";
import { makeCertificates, type TestCertificates } from "./support/certificates.ts";
import { type Cluster, startCluster } from "./support/cluster.ts";
import { runCli, scrape } from "./support/processes.ts";

const GRPCURL = process.env.KLSTORE_TEST_GRPCURL;

describe("mutual TLS between clients, shards and the reader", () => {
  let certs: TestCertificates;
  let cluster: Cluster;

  before(async () => {
    certs = makeCertificates();
    const data = mkdtempSync(join(tmpdir(), "klstore-tls-data-"));
    const config = join(certs.dir, "klstore.ini");
    writeFileSync(
      config,
      `[store]
url="file://${data}"
[server]
log_level=warn
tls_cert_file="${certs.serverCert}"
tls_key_file="${certs.serverKey}"
tls_client_ca_file="${certs.ca}"
[writer]
forwarding_peer_names="localhost"
`,
    );
    cluster = await startCluster(config, 2, { metrics: true });
  });
  after(() => cluster?.stop());

  const client = (creds: ReturnType<typeof credentials.createSsl>, writer?: string) =>
    new KlstoreClient({
      writers: writer ? `only=${writer}` : cluster.shardList,
      reader: cluster.reader.address,
      credentials: creds,
      maxAttempts: 1,
      deadlineMillis: 10_000,
    });
  const trusted = () =>
    credentials.createSsl(readFileSync(certs.ca), readFileSync(certs.clientKey), readFileSync(certs.clientCert));

  it("serves a client with a trusted certificate, and shards forward to each other over mutual TLS", async () => {
    // Only writer-0 is known to this client, so keys writer-1 owns are forwarded.
    const viaOne = client(trusted(), cluster.writers[0]?.address);
    const ring = new ShardRing(cluster.shards);
    const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
    assert.ok(
      keys.some((k) => ring.ownerOf("tls", k).name === "writer-1"),
      "some key is forwarded",
    );
    try {
      await viaOne.createKeyspace("tls");
      for (const key of keys) await viaOne.append("tls", key, [{ value: key }]);
      for (const key of keys) {
        const page = await viaOne.readPage("tls", key);
        assert.deepEqual(
          page.items.map((i) => Buffer.from(i.value).toString()),
          [key],
        );
      }
    } finally {
      viaOne.close();
    }
  });

  it("trusts a call marked as forwarded only from a peer shard's certificate", async () => {
    const ring = new ShardRing(cluster.shards);
    let key = "";
    for (let i = 0; !key; i++) if (ring.ownerOf("tls-marked", `k${i}`).name === "writer-1") key = `k${i}`;
    const appends = (shard: number) => scrape(cluster.writers[shard]?.metrics as string, "klstore_appends_total");
    const marked = async (certificate: string, privateKey: string) => {
      const creds = credentials.createSsl(readFileSync(certs.ca), readFileSync(privateKey), readFileSync(certificate));
      const shard = new Client(cluster.writers[0]?.address as string, creds, CHANNEL_OPTIONS);
      const metadata = new Metadata();
      metadata.set("klstore-forwarded-by", "writer-1");
      const before = [await appends(0), await appends(1)];
      try {
        const request = create(AppendRequestSchema, {
          keyspace: "tls-marked",
          key,
          insertions: [create(InsertionSchema, { value: Buffer.from("x") })],
        });
        await callUnary(shard, WriterService, "append", request, { deadline: Date.now() + 10_000 }, metadata);
      } finally {
        shard.close();
      }
      return [(await appends(0)) - (before[0] as number), (await appends(1)) - (before[1] as number)];
    };
    const admin = client(trusted());
    try {
      await admin.createKeyspace("tls-marked");
    } finally {
      admin.close();
    }
    // A client's certificate (CN klstore-test-client): the marker is ignored, the owner serves it.
    assert.deepEqual(await marked(certs.clientCert, certs.clientKey), [0, 1]);
    // A shard's certificate (CN localhost, in forwarding_peer_names): served where it lands.
    assert.deepEqual(await marked(certs.serverCert, certs.serverKey), [1, 0]);
  });

  it("refuses plaintext, clients without a certificate, and certificates from an unknown CA", async () => {
    const refused = async (what: string, creds: ReturnType<typeof credentials.createSsl>) => {
      const c = client(creds);
      try {
        await assert.rejects(c.keyspaceMetadata("tls"), (err: ServiceError) => {
          assert.equal(err.code, status.UNAVAILABLE, `${what}: ${err.message}`);
          return true;
        });
        await assert.rejects(
          c.append("tls", "k0", [{ value: "x" }]),
          (err: ServiceError) => err.code === status.UNAVAILABLE,
        );
      } finally {
        c.close();
      }
    };
    await refused("plaintext", credentials.createInsecure());
    await refused("no client certificate", credentials.createSsl(readFileSync(certs.ca)));
    await refused(
      "unknown CA",
      credentials.createSsl(readFileSync(certs.ca), readFileSync(certs.rogueKey), readFileSync(certs.rogueCert)),
    );
  });

  it("works from the CLI and grpcurl with the same certificates", async () => {
    const tls = ["--tls-ca", certs.ca, "--tls-cert", certs.clientCert, "--tls-key", certs.clientKey];
    const remote = ["--writer", cluster.shardList, "--reader", cluster.reader.address, ...tls];
    const appended = await runCli([...remote, "append", "tls", "cli", "over-tls"]);
    assert.equal(appended.code, 0, appended.stderr);
    const read = await runCli([...remote, "read", "tls", "cli", "--output", "text"]);
    assert.equal(read.stdout.trim().split("\t")[3], "over-tls");
    const noCert = await runCli([
      "--writer",
      cluster.shardList,
      "--reader",
      cluster.reader.address,
      "--tls-ca",
      certs.ca,
      "--timeout",
      "5000",
      "stat",
      "tls",
      "cli",
    ]);
    assert.equal(noCert.code, 1);
    assert.match(noCert.stderr, /UNAVAILABLE/);
    if (GRPCURL) {
      const { stdout } = await promisify(execFile)(GRPCURL, [
        "-max-time",
        "10",
        "-cacert",
        certs.ca,
        "-cert",
        certs.clientCert,
        "-key",
        certs.clientKey,
        cluster.reader.address,
        "grpc.health.v1.Health/Check",
      ]);
      assert.deepEqual(JSON.parse(stdout), { status: "SERVING" });
    }
  });
});
