import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConfigError } from "@klstore/config";
import { loadBridgeConfig } from "../src/bridge-config.ts";
import { EXAMPLE_CONFIG, exampleConfig } from "./support.ts";

function fileWith(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "klstore-bridge-config-")), "bridge.ini");
  writeFileSync(path, text);
  return path;
}

describe("bridge config", () => {
  it("reads examples/kafka-bridge.ini as shipped: [s3], [batcher], [kafka] and [parser]", () => {
    const { bridge, klstore } = loadBridgeConfig(EXAMPLE_CONFIG, [], {});
    assert.deepEqual(klstore.store, {
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
    assert.deepEqual(klstore.writer.engine, {
      compactSizeThreshold: 1_000_000,
      compactItemsThreshold: 100,
      compactObjectsThreshold: 10,
    });
    assert.deepEqual(klstore.batching, {
      writerThreadCount: 1,
      writerThreadQueueCapacity: 4096,
      batchCheckIntervalMillis: 100,
      batchFlushIntervalMillis: 1000,
      batchFlushItemCountThreshold: 100_000,
      batchFlushSizeThreshold: 1_000_000,
    });
    assert.deepEqual(bridge.topics, ["inbound"]);
    assert.equal(bridge.offsetCommitIntervalMillis, 60_000);
    assert.equal(bridge.consumer.groupId, "test_group");
    assert.deepEqual(bridge.consumer.bootstrapBrokers, ["127.0.0.1:9092"]);
    assert.equal(bridge.consumer.fallbackMode, "earliest");
    assert.equal(bridge.badRecordPolicy, "skip");
    const record = {
      topic: "inbound",
      partition: 3,
      offset: 17n,
      key: undefined,
      value: undefined,
      headers: new Map(),
    };
    assert.equal(bridge.parsers.keyspace(record), "my_keyspace");
    assert.equal(bridge.parsers.key(record), "3");
    assert.equal(bridge.parsers.nonce(record), 17n);
    assert.equal(bridge.parsers.timestamp(record), undefined);
  });

  it("maps consumer properties and refuses unknown ones by name", () => {
    const base = exampleConfig("http://h", "b", "k1:9092, k2:9092");
    const { bridge } = loadBridgeConfig(
      fileWith(base),
      ["kafka.session.timeout.ms=6000", "kafka.isolation.level=read_committed", "kafka.auto.offset.reset=none"],
      {},
    );
    assert.deepEqual(bridge.consumer.bootstrapBrokers, ["k1:9092", "k2:9092"]);
    assert.equal(bridge.consumer.sessionTimeout, 6000);
    assert.equal(bridge.consumer.isolationLevel, 1);
    assert.equal(bridge.consumer.fallbackMode, "fail");
    const refused = (overrides: string[], message: RegExp) =>
      assert.throws(
        () => loadBridgeConfig(fileWith(base), overrides, {}),
        (err: unknown) => err instanceof ConfigError && message.test(err.message),
      );
    refused(
      ["kafka.max.poll.records=10"],
      /max\.poll\.records: unknown setting.*Consumer properties the bridge maps: group\.id/,
    );
    refused(["kafka.enable.auto.commit=true"], /commits offsets only once their records are durable/);
    refused(["parser.key_parser=RecordKeyy"], /\[parser\] key_parser: unknown string parser "RecordKeyy"/);
    refused(["kafka.bad_record_policy=dead_letter"], /needs dead_letter_topic/);
    refused(["parser.nonce_parser=RecordHeaderUtf8"], /needs an argument/);
  });

  it("names the log of a bridge writing the shared log itself by its group.instance.id", () => {
    const base = exampleConfig("http://h", "b", "k1:9092");
    assert.equal(loadBridgeConfig(fileWith(base), [], {}).bridge.logName, undefined, "no [log]: per-key objects");
    const named = loadBridgeConfig(fileWith(base), ["log.enabled=true", "kafka.group.instance.id=member-1"], {});
    assert.equal(named.bridge.logName, "bridge-member-1");
    const throughShards = loadBridgeConfig(fileWith(base), ["log.enabled=true", "writer.shards=w0=127.0.0.1:1"], {});
    assert.equal(throughShards.bridge.logName, undefined, "the shards write the log");
    const refused = (overrides: string[], message: RegExp) =>
      assert.throws(
        () => loadBridgeConfig(fileWith(base), overrides, {}),
        (err: unknown) => err instanceof ConfigError && message.test(err.message),
      );
    refused(["log.enabled=true"], /\[log\] enabled=true without \[writer\] shards needs \[kafka\] group\.instance\.id/);
    refused(
      ["log.enabled=true", "kafka.group.instance.id=a/b"],
      /\[kafka\] group\.instance\.id names this bridge's log: "bridge-a\/b" must be 1-128 characters/,
    );
  });

  it("ignores a variable naming no [kafka] setting (the test broker's port, say) and reports it", () => {
    const base = exampleConfig("http://h", "b", "k1:9092");
    const { bridge, ignoredEnvironment } = loadBridgeConfig(fileWith(base), [], {
      KLSTORE_KAFKA_PORT: "9092",
      KLSTORE_S3_PORT: "8333",
      KLSTORE_KAFKA_TOPIC: "from-env",
    });
    assert.deepEqual(bridge.topics, ["from-env"], "a variable naming a setting still sets it");
    assert.equal(ignoredEnvironment.length, 2);
    assert.match(ignoredEnvironment.join("\n"), /env KLSTORE_S3_PORT: \[s3\] has no setting port/);
    assert.match(ignoredEnvironment.join("\n"), /env KLSTORE_KAFKA_PORT: \[kafka\] has no setting port/);
  });
});
