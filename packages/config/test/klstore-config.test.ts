import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  ConfigError,
  configFromEnv,
  KLSTORE_SECTIONS,
  loadKlstoreConfig,
  parseConfigText,
  parseKlstoreConfig,
  RESERVED_ENV_PREFIXES,
} from "../src/index.ts";

function fileWith(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "klstore-config-")), "klstore.ini");
  writeFileSync(path, text);
  return path;
}

// The seed's example, minus the sections only the Kafka bridge reads.
const SEED_EXAMPLE = `[s3]
endpoint="http://localhost:4566"
bucket_name="my-bucket"
region="us-east-1"
path_style=true
use_default_credentials=false
access_key="test"
secret_key="test"
security_token="test"
session_token="test"
profile="test"
compact_size_threshold=1000000
compact_items_threshold=100
compact_objects_threshold=10
[batcher]
writer_thread_count=1
writer_thread_queue_capacity=4096
batch_check_interval_millis=100
batch_flush_interval_millis=1000
batch_flush_item_count_threshold=100000
batch_flush_size_threshold=1000000
`;

describe("config file", () => {
  it("reads the seed's example: S3 settings, compaction thresholds in [s3], batcher", () => {
    const config = loadKlstoreConfig({ file: fileWith(SEED_EXAMPLE), env: {} });
    assert.deepEqual(config.store, {
      bucketName: "my-bucket",
      objectPrefix: "",
      endpoint: "http://localhost:4566",
      region: "us-east-1",
      pathStyle: true,
      useDefaultCredentials: false,
      accessKey: "test",
      secretKey: "test",
      sessionToken: "test",
      profile: "test",
      maxAttempts: 8,
    });
    assert.deepEqual(config.writer.engine, {
      compactSizeThreshold: 1_000_000,
      compactItemsThreshold: 100,
      compactObjectsThreshold: 10,
    });
    assert.deepEqual(config.batching, {
      writerThreadCount: 1,
      writerThreadQueueCapacity: 4096,
      batchCheckIntervalMillis: 100,
      batchFlushIntervalMillis: 1000,
      batchFlushItemCountThreshold: 100_000,
      batchFlushSizeThreshold: 1_000_000,
    });
  });

  it("reads [log]: off unless enabled, its keys as the log writer's settings, bad values refused", () => {
    assert.deepEqual(loadKlstoreConfig({ env: {} }).log, {
      enabled: false,
      writer: {},
      slotRecordCacheMillis: undefined,
    });
    const config = loadKlstoreConfig({
      env: { KLSTORE_LOG_LANES: "4" },
      overrides: [
        "log.enabled=true",
        "log.flush_interval_millis=5",
        "log.materialize_interval_millis=30000",
        "log.retention_millis=600000",
        "log.slot_record_cache_millis=500",
      ],
    });
    assert.equal(config.log.enabled, true);
    assert.deepEqual(config.log.writer, {
      logLanes: 4,
      logFlushIntervalMillis: 5,
      materializeIntervalMillis: 30_000,
      logRetentionMillis: 600_000,
    });
    assert.equal(config.log.slotRecordCacheMillis, 500);
    assert.throws(() => loadKlstoreConfig({ env: {}, overrides: ["log.lanes=0"] }), /lanes.*outside 1\.\.64/);
    assert.throws(() => loadKlstoreConfig({ env: {}, overrides: ["log.lanes_count=2"] }), /lanes_count/);
  });

  it("reads the writer's compaction cache bound (0 turns it off; negative is refused)", () => {
    const config = loadKlstoreConfig({ env: {}, overrides: ["writer.compaction_cache_bytes=0"] });
    assert.equal(config.writer.engine.compactionCacheBytes, 0);
    assert.throws(
      () => loadKlstoreConfig({ env: {}, overrides: ["writer.compaction_cache_bytes=-1"] }),
      /compaction_cache_bytes/,
    );
  });

  it("reads how far into the future a writer takes timestamps (0: none past its clock; negative is refused)", () => {
    const config = loadKlstoreConfig({ env: {}, overrides: ["writer.max_future_timestamp_millis=60_000"] });
    assert.equal(config.writer.engine.maxFutureTimestampMillis, 60_000);
    assert.equal(
      loadKlstoreConfig({ env: {}, overrides: ["writer.max_future_timestamp_millis=0"] }).writer.engine
        .maxFutureTimestampMillis,
      0,
    );
    assert.throws(
      () => loadKlstoreConfig({ env: {}, overrides: ["writer.max_future_timestamp_millis=-1"] }),
      /max_future_timestamp_millis/,
    );
  });

  it("reads the batcher's commit slots and object bound", () => {
    const config = loadKlstoreConfig({
      env: {},
      overrides: ["batcher.max_concurrent_commits=4", "batcher.batch_max_bytes=2097152"],
    });
    assert.equal(config.batching.maxConcurrentCommits, 4);
    assert.equal(config.batching.batchMaxBytes, 2_097_152);
    assert.throws(
      () => loadKlstoreConfig({ env: {}, overrides: ["batcher.max_concurrent_commits=0"] }),
      /max_concurrent_commits/,
    );
  });

  it("reads the reader's page byte bound, below the gRPC message limit", () => {
    const config = loadKlstoreConfig({ env: {}, overrides: ["reader.max_page_bytes=1048576"] });
    assert.equal(config.reader.engine.maxPageBytes, 1_048_576);
    assert.throws(
      () => loadKlstoreConfig({ env: {}, overrides: ["reader.max_page_bytes=67108864"] }),
      /max_page_bytes/,
    );
  });

  it("reads the reader's stream limits, refusing a zero limit", () => {
    const config = loadKlstoreConfig({
      env: { KLSTORE_READER_MAX_STREAMS: "100" },
      overrides: [
        "reader.stream_buffer_bytes=1_048_576",
        "reader.total_stream_buffer_bytes=67108864",
        "reader.max_streams_per_connection=10",
        "reader.stream_stall_millis=250",
      ],
    });
    assert.equal(config.reader.streamStallMillis, 250);
    assert.equal(config.reader.streamBufferBytes, 1_048_576);
    assert.equal(config.reader.totalStreamBufferBytes, 67_108_864);
    assert.equal(config.reader.maxStreams, 100);
    assert.equal(config.reader.maxStreamsPerConnection, 10);
    for (const key of ["max_streams", "max_streams_per_connection", "total_stream_buffer_bytes"]) {
      assert.throws(() => loadKlstoreConfig({ env: {}, overrides: [`reader.${key}=0`] }), new RegExp(key));
    }
  });

  it("lets the environment override the file, and --set override both", () => {
    const file = fileWith('[store]\nurl="file:///data"\n[writer]\nname=writer-0\nlisten=0.0.0.0:7401\n');
    const config = loadKlstoreConfig({
      file,
      env: { KLSTORE_WRITER_NAME: "writer-1", KLSTORE_WRITER_LISTEN: "0.0.0.0:9000", KLSTORE_LOG_LEVEL: "debug" },
      overrides: ["writer.listen=127.0.0.1:7402"],
    });
    assert.equal(config.store, "file:///data");
    assert.equal(config.writer.name, "writer-1");
    assert.equal(config.writer.listen, "127.0.0.1:7402");
  });

  it("derives the shard list of a StatefulSet, naming this shard after the pod", () => {
    const raw = parseConfigText(
      "[writer]\nstatefulset=klstore-writer\nreplicas=3\nservice=klstore-writer-hl\ndns_suffix=ns.svc.cluster.local\n",
      "k8s.ini",
    );
    const config = parseKlstoreConfig(raw, { HOSTNAME: "klstore-writer-2" });
    assert.equal(config.writer.name, "klstore-writer-2");
    assert.deepEqual(config.writer.shards, [
      { name: "klstore-writer-0", address: "klstore-writer-0.klstore-writer-hl.ns.svc.cluster.local:7401" },
      { name: "klstore-writer-1", address: "klstore-writer-1.klstore-writer-hl.ns.svc.cluster.local:7401" },
      { name: "klstore-writer-2", address: "klstore-writer-2.klstore-writer-hl.ns.svc.cluster.local:7401" },
    ]);
  });

  it("reads a static shard list", () => {
    const raw = parseConfigText('[writer]\nshards="a=10.0.0.1:7401,b=10.0.0.2:7401"\nname=b\n', "f");
    assert.deepEqual(parseKlstoreConfig(raw, {}).writer.shards, [
      { name: "a", address: "10.0.0.1:7401" },
      { name: "b", address: "10.0.0.2:7401" },
    ]);
  });

  it("reads the forwarding proof: a secret (from the environment on Kubernetes) and peer certificate names", () => {
    const config = loadKlstoreConfig({
      env: { KLSTORE_WRITER_FORWARDING_SECRET: "0123456789abcdef-from-env" },
      overrides: [
        "server.tls_cert_file=/c.pem",
        "server.tls_key_file=/k.pem",
        "server.tls_client_ca_file=/ca.pem",
        "writer.forwarding_peer_names=klstore-writer, spiffe://cluster/ns/klstore/sa/writer",
      ],
    });
    assert.equal(config.writer.forwardingSecret, "0123456789abcdef-from-env");
    assert.deepEqual(config.writer.forwardingPeerNames, ["klstore-writer", "spiffe://cluster/ns/klstore/sa/writer"]);
    assert.equal(loadKlstoreConfig({ env: {} }).writer.forwardingSecret, undefined);
  });

  const refusals: [string, string, RegExp][] = [
    [
      "unknown key, with its origin",
      "[writer]\nshardz=a\n",
      /f \[writer\] shardz: unknown setting \(known in \[writer\]: .*shards/,
    ],
    ["unknown section", "[writers]\nname=a\n", /unknown section/],
    [
      "a number that is not one",
      "[batcher]\nwriter_thread_count=two\n",
      /writer_thread_count: "two" is not an integer/,
    ],
    ["a number out of range", "[batcher]\nwriter_thread_count=100000\n", /outside 0\.\.256/],
    ["a bad boolean", "[s3]\nbucket_name=b\npath_style=yes\n", /path_style: "yes" is not true or false/],
    ["both a store URL and [s3]", "[store]\nurl=file:///x\n[s3]\nbucket_name=b\n", /either \[store\] url or \[s3\]/],
    ["[s3] without a bucket", "[s3]\nregion=eu-west-1\n", /bucket_name is required/],
    [
      "explicit credentials missing",
      "[s3]\nbucket_name=b\nuse_default_credentials=false\n",
      /needs access_key and secret_key/,
    ],
    [
      "a threshold set twice",
      "[s3]\nbucket_name=b\ncompact_items_threshold=1\n[writer]\ncompact_items_threshold=2\n",
      /both \[s3\] and \[writer\]/,
    ],
    [
      "shards and statefulset together",
      "[writer]\nshards=a=h:1\nstatefulset=s\nreplicas=1\n",
      /either shards or statefulset/,
    ],
    ["a StatefulSet without replicas", "[writer]\nstatefulset=s\n", /needs replicas/],
    ["half a TLS key pair", "[server]\ntls_cert_file=/c.pem\n", /go together/],
    ["mutual TLS without a certificate", "[server]\ntls_client_ca_file=/ca.pem\n", /needs tls_cert_file/],
    ["a key outside any section", "name=a\n", /outside any \[section\]/],
    ["a short forwarding secret", "[writer]\nforwarding_secret=hunter2\n", /forwarding_secret: shorter than 16/],
    [
      "peer certificate names without mutual TLS",
      "[writer]\nforwarding_peer_names=klstore-writer\n",
      /forwarding_peer_names needs mutual TLS/,
    ],
    ["an unknown log level", "[server]\nlog_level=loud\n", /log_level: "loud" is not one of/],
  ];
  for (const [what, text, message] of refusals) {
    it(`refuses ${what}`, () => {
      assert.throws(
        () => parseKlstoreConfig(parseConfigText(text, "f"), {}),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }

  it("names the variable or flag that holds a bad value", () => {
    assert.throws(
      () => loadKlstoreConfig({ env: { KLSTORE_READER_FOLLOW_POLL_MILLIS: "soon" } }),
      /env KLSTORE_READER_FOLLOW_POLL_MILLIS follow_poll_millis: "soon" is not an integer/,
    );
    assert.throws(
      () => loadKlstoreConfig({ env: {}, overrides: ["reader.bogus=1"] }),
      /--set reader\.bogus bogus: unknown/,
    );
    assert.throws(() => loadKlstoreConfig({ env: {}, overrides: ["nodot"] }), /expected section\.key=value/);
  });

  it("ignores an environment variable naming no setting, and reports it for a warning", () => {
    // Kubernetes' service links for a Service named klstore-reader, and a variable meant for another program.
    const config = loadKlstoreConfig({
      env: {
        KLSTORE_READER_SERVICE_HOST: "10.0.0.7",
        KLSTORE_READER_PORT: "tcp://10.0.0.7:7501",
        KLSTORE_S3_PORT: "8333",
        KLSTORE_WRITER_NAME: "writer-3",
      },
    });
    assert.equal(config.writer.name, "writer-3", "a variable naming a setting still sets it");
    assert.deepEqual(
      config.ignoredEnvironment.map((w) =>
        /^env (\S+): \[(\w+)\] has no setting (\w+), so the variable is ignored/.exec(w)?.slice(1),
      ),
      [
        ["KLSTORE_S3_PORT", "s3", "port"],
        ["KLSTORE_READER_SERVICE_HOST", "reader", "service_host"],
        ["KLSTORE_READER_PORT", "reader", "port"],
      ],
    );
    assert.equal(config.store, undefined, "no store: an ignored [s3] variable does not ask for a bucket");
    assert.deepEqual(loadKlstoreConfig({ env: { KLSTORE_WRITER_NAME: "w" } }).ignoredEnvironment, []);
  });

  it("refuses an unknown key of the file or a flag even when a variable names it too", () => {
    assert.throws(
      () => loadKlstoreConfig({ file: fileWith('[s3]\nbucket_name="b"\nport=1\n'), env: { KLSTORE_S3_PORT: "2" } }),
      /klstore\.ini \[s3\] port: unknown setting/,
    );
    assert.throws(
      () => loadKlstoreConfig({ env: { KLSTORE_S3_PORT: "2" }, overrides: ["s3.bucket_name=b", "s3.port=1"] }),
      /--set s3\.port port: unknown setting/,
    );
  });

  it("never reads the developer tools' variables as settings", () => {
    for (const reserved of RESERVED_ENV_PREFIXES) {
      assert.ok(!(KLSTORE_SECTIONS as readonly string[]).includes(reserved), `[${reserved}] is no section`);
    }
    const raw = configFromEnv({ KLSTORE_SERVICES_S3_PORT: "1", KLSTORE_TEST_S3_ENDPOINT: "x" }, [
      ...KLSTORE_SECTIONS,
      ...RESERVED_ENV_PREFIXES,
    ]);
    assert.equal(raw.size, 0);
    // Every variable the developer scripts set or read, but for the old names services.sh
    // still renames (KLSTORE_S3_PORT was [s3] port to every klstore process it started).
    const scripts = join(import.meta.dirname, "../../../scripts");
    const names = new Set<string>();
    for (const file of readdirSync(scripts).filter((f) => f.endsWith(".sh"))) {
      for (const [name] of readFileSync(join(scripts, file), "utf8").matchAll(/KLSTORE_[A-Z0-9_]*[A-Z0-9]/g)) {
        names.add(name);
      }
    }
    assert.ok(names.has("KLSTORE_SERVICES_S3_PORT"), [...names].join(" "));
    const renamed = ["KLSTORE_S3_PORT", "KLSTORE_KAFKA_PORT", "KLSTORE_KAFKA_CONTROLLER_PORT", "KLSTORE_REDIS_PORT"];
    const settings = configFromEnv(
      Object.fromEntries([...names].filter((n) => !renamed.includes(n)).map((n) => [n, "1"])),
      [...KLSTORE_SECTIONS, "kafka", "parser"], // the bridge's sections too
    );
    assert.deepEqual(
      [...settings.values()].flatMap((keys) => [...keys.values()].map((v) => v.origin)),
      [],
    );
  });

  it("hands sections it does not own to the caller", () => {
    const raw = parseConfigText('[kafka]\ntopic="inbound"\ngroup.id="g"\n', "f");
    const config = parseKlstoreConfig(raw, {}, ["kafka"]);
    assert.equal(config.extra.get("kafka")?.get("group.id")?.value, "g");
  });
});
