// The bridge's config sections, [kafka] and [parser], beside the shared [s3]/[batcher]
// (in-process writer) or [writer] shards (through the writer service). The seed's Kafka
// consumer properties are mapped onto @platformatic/kafka's options one by one; a property
// the bridge does not know is refused by name rather than silently ignored.

import { ConfigError, type KlstoreConfig, loadKlstoreConfig, SectionReader } from "@klstore/config";
import { checkWriterName, InvalidArgument } from "@klstore/core";
import { type NumberParser, numberParser, type StringParser, stringParser } from "./record-parsers.ts";

export interface ConsumerSettings {
  readonly groupId: string;
  readonly bootstrapBrokers: string[];
  readonly clientId: string;
  /** What to do with a partition that has no committed offset. */
  readonly fallbackMode: "earliest" | "latest" | "fail";
  readonly sessionTimeout?: number | undefined;
  readonly heartbeatInterval?: number | undefined;
  readonly rebalanceTimeout?: number | undefined;
  readonly groupInstanceId?: string | undefined;
  readonly minBytes?: number | undefined;
  readonly maxBytes?: number | undefined;
  readonly maxBytesPerPartition?: number | undefined;
  readonly maxWaitTime?: number | undefined;
  readonly isolationLevel?: number | undefined;
}

export interface BridgeSettings {
  readonly topics: string[];
  readonly offsetCommitIntervalMillis: number;
  readonly consumer: ConsumerSettings;
  readonly badRecordPolicy: "skip" | "dead_letter";
  readonly deadLetterTopic?: string | undefined;
  readonly metricsListen?: string | undefined;
  /** The log this bridge appends to when it writes the shared log itself (no writer shards). */
  readonly logName?: string | undefined;
  readonly parsers: {
    readonly keyspace: StringParser;
    readonly key: StringParser;
    readonly nonce: NumberParser;
    readonly timestamp: NumberParser;
  };
}

export interface BridgeConfig {
  readonly klstore: KlstoreConfig;
  readonly bridge: BridgeSettings;
  /** KLSTORE_<SECTION>_<KEY> variables naming no setting, of every section: to log as warnings. */
  readonly ignoredEnvironment: readonly string[];
}

/** Kafka consumer properties (Java client names) and what they become. */
export const CONSUMER_PROPERTIES: Record<string, string> = {
  "group.id": "groupId",
  "bootstrap.servers": "bootstrapBrokers",
  "client.id": "clientId",
  "auto.offset.reset": "fallbackMode (earliest, latest; none fails)",
  "session.timeout.ms": "sessionTimeout",
  "heartbeat.interval.ms": "heartbeatInterval",
  "max.poll.interval.ms": "rebalanceTimeout",
  "group.instance.id": "groupInstanceId",
  "fetch.min.bytes": "minBytes",
  "fetch.max.bytes": "maxBytes",
  "max.partition.fetch.bytes": "maxBytesPerPartition",
  "fetch.max.wait.ms": "maxWaitTime",
  "isolation.level": "isolationLevel (read_uncommitted 0, read_committed 1)",
  "enable.auto.commit": "must be false: the bridge commits only durable offsets",
};

function parserOf<T>(section: SectionReader, key: string, build: (spec: string) => T, fallback?: string): T {
  const spec = section.string(key) ?? fallback;
  if (spec === undefined) throw new ConfigError(`[parser] ${key} is required`);
  try {
    return build(spec);
  } catch (err) {
    throw new ConfigError(`[parser] ${key}: ${(err as Error).message}`);
  }
}

/**
 * The log of a bridge that writes the shared log itself: one per bridge process and the same
 * after a restart (which then fences and resumes it), as Kafka's static membership id is
 * (the broker refuses two members with one id), so that id names it.
 */
function bridgeLogName(groupInstanceId: string | undefined): string {
  if (groupInstanceId === undefined) {
    throw new ConfigError(
      "[log] enabled=true without [writer] shards needs [kafka] group.instance.id: it names this bridge's log (one per bridge process, the same across its restarts)",
    );
  }
  try {
    return checkWriterName(`bridge-${groupInstanceId}`);
  } catch (err) {
    const why = err instanceof InvalidArgument ? err.reason : (err as Error).message;
    throw new ConfigError(`[kafka] group.instance.id names this bridge's log: ${why}`);
  }
}

function readConsumer(kafka: SectionReader): ConsumerSettings {
  const reset = kafka.oneOf("auto.offset.reset", ["earliest", "latest", "none"]) ?? "latest";
  if (kafka.boolean("enable.auto.commit") === true) {
    throw new ConfigError(
      "[kafka] enable.auto.commit=true: the bridge commits offsets only once their records are durable",
    );
  }
  const isolation = kafka.oneOf("isolation.level", ["read_uncommitted", "read_committed"]);
  const brokers = kafka.requiredString("bootstrap.servers", "the Kafka brokers, host:port,...");
  return {
    groupId: kafka.requiredString("group.id", "the consumer group the bridge joins"),
    bootstrapBrokers: brokers
      .split(",")
      .map((b) => b.trim())
      .filter((b) => b !== ""),
    clientId: kafka.string("client.id") ?? "klstore-kafka-bridge",
    fallbackMode: reset === "none" ? "fail" : reset,
    sessionTimeout: kafka.integer("session.timeout.ms", 1000, 3_600_000),
    heartbeatInterval: kafka.integer("heartbeat.interval.ms", 100, 3_600_000),
    rebalanceTimeout: kafka.integer("max.poll.interval.ms", 1000, 2 ** 31 - 1),
    groupInstanceId: kafka.string("group.instance.id"),
    minBytes: kafka.integer("fetch.min.bytes", 1, 2 ** 31 - 1),
    maxBytes: kafka.integer("fetch.max.bytes", 1, 2 ** 31 - 1),
    maxBytesPerPartition: kafka.integer("max.partition.fetch.bytes", 1, 2 ** 31 - 1),
    maxWaitTime: kafka.integer("fetch.max.wait.ms", 0, 3_600_000),
    isolationLevel: isolation === undefined ? undefined : isolation === "read_committed" ? 1 : 0,
  };
}

/** The bridge's settings, and the environment variables of its sections that name no setting. */
export function readBridgeSettings(config: KlstoreConfig): { settings: BridgeSettings; ignoredEnvironment: string[] } {
  const kafka = new SectionReader("kafka", config.extra.get("kafka"));
  const parser = new SectionReader("parser", config.extra.get("parser"));
  if (!kafka.present) throw new ConfigError("the bridge needs a [kafka] section (topic, group.id, bootstrap.servers)");
  const topics = kafka
    .requiredString("topic", "the topic (or topics, comma-separated) to consume")
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
  const policy = kafka.oneOf("bad_record_policy", ["skip", "dead_letter"]) ?? "skip";
  const deadLetterTopic = kafka.string("dead_letter_topic");
  if (policy === "dead_letter" && !deadLetterTopic) {
    throw new ConfigError("[kafka] bad_record_policy=dead_letter needs dead_letter_topic");
  }
  const consumer = readConsumer(kafka);
  const settings: BridgeSettings = {
    topics,
    offsetCommitIntervalMillis: (kafka.integer("offset_commit_interval_seconds", 1, 86_400) ?? 60) * 1000,
    consumer,
    badRecordPolicy: policy,
    deadLetterTopic,
    metricsListen: kafka.string("metrics_listen"),
    logName: config.log.enabled && !config.writer.shards ? bridgeLogName(consumer.groupInstanceId) : undefined,
    parsers: {
      keyspace: parserOf(parser, "keyspace_parser", stringParser),
      key: parserOf(parser, "key_parser", stringParser),
      nonce: parserOf(parser, "nonce_parser", numberParser, "None"),
      timestamp: parserOf(parser, "timestamp_parser", numberParser, "None"),
    },
  };
  const ignoredEnvironment: string[] = [];
  for (const [section, reader] of [
    ["kafka", kafka],
    ["parser", parser],
  ] as const) {
    try {
      ignoredEnvironment.push(...reader.rejectUnknown());
    } catch (err) {
      const hint =
        section === "kafka"
          ? ` Consumer properties the bridge maps: ${Object.keys(CONSUMER_PROPERTIES).join(", ")}.`
          : "";
      throw new ConfigError(`${(err as Error).message}.${hint}`);
    }
  }
  return { settings, ignoredEnvironment };
}

export function loadBridgeConfig(
  file: string | undefined,
  overrides: readonly string[] = [],
  env = process.env,
): BridgeConfig {
  const klstore = loadKlstoreConfig({ file, overrides, env, extraSections: ["kafka", "parser"] });
  const { settings, ignoredEnvironment } = readBridgeSettings(klstore);
  return { klstore, bridge: settings, ignoredEnvironment: [...klstore.ignoredEnvironment, ...ignoredEnvironment] };
}
