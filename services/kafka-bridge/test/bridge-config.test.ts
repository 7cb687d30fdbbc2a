import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConfigError } from "@klstore/config";
import { loadBridgeConfig } from "../src/bridge-config.ts";
import { seedExample } from "./support.ts";

function fileWith(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "klstore-bridge-config-")), "bridge.ini");
  writeFileSync(path, text);
  return path;
}

describe("bridge config", () => {
  it("reads the seed's example as-is", () => {
    const { bridge, klstore } = loadBridgeConfig(
      fileWith(seedExample("http://127.0.0.1:8333", "b", "127.0.0.1:9092")),
      [],
      {},
    );
    assert.deepEqual(bridge.topics, ["inbound"]);
    assert.equal(bridge.offsetCommitIntervalMillis, 60_000);
    assert.equal(bridge.consumer.groupId, "test_group");
    assert.deepEqual(bridge.consumer.bootstrapBrokers, ["127.0.0.1:9092"]);
    assert.equal(bridge.consumer.fallbackMode, "earliest");
    assert.equal(bridge.badRecordPolicy, "skip");
    assert.equal(klstore.batching.writerThreadQueueCapacity, 4096);
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
    const base = seedExample("http://h", "b", "k1:9092, k2:9092");
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
});
