// The Kafka bridge (seed: KafkaConsumerBridge): consumes topics in a consumer group with
// auto commit off, turns each record into an insertion with the configured parsers, and
// appends it through a sink. Every offset_commit_interval the sink is flushed and, per
// partition, the offset after the last record that is durable is committed, so a crash
// replays only records that may not be stored, and their nonces make the replay add
// nothing twice. A record that cannot be parsed or stored goes to the bad-record policy
// (skip and count, or a dead-letter topic) and never stops the bridge.

import { defined } from "@klstore/config";
import { KlstoreError } from "@klstore/core";
import type { Logger } from "@klstore/service-runtime";
import {
  Consumer,
  type Message,
  type MessagesStream,
  MessagesStreamModes,
  Producer,
  stringDeserializer,
} from "@platformatic/kafka";
import { type AppendSink, isRecordError } from "./append-sink.ts";
import type { BridgeSettings } from "./bridge-config.ts";
import type { BridgeMetrics } from "./bridge-metrics.ts";
import { CommitTracker } from "./partition-progress.ts";
import { type ConsumedRecord, RecordParseError } from "./record-parsers.ts";

type KafkaMessage = Message<Buffer, Buffer, string, Buffer>;

export interface BridgeDeps {
  readonly settings: BridgeSettings;
  readonly sink: AppendSink;
  readonly logger: Logger;
  readonly metrics: BridgeMetrics;
}

export class KafkaBridge {
  private readonly deps: BridgeDeps;
  private readonly tracker = new CommitTracker();
  private readonly consumer: Consumer<Buffer, Buffer, string, Buffer>;
  private deadLetters: Producer<Buffer, Buffer, string, Buffer> | undefined;
  private stream: MessagesStream<Buffer, Buffer, string, Buffer> | undefined;
  private commitTimer: NodeJS.Timeout | undefined;
  private committing: Promise<void> = Promise.resolve();
  /** Set when an append fails for a reason other than the record: the bridge stops. */
  private fatal: Error | undefined;
  private stopped = false;

  constructor(deps: BridgeDeps) {
    this.deps = deps;
    const c = deps.settings.consumer;
    this.consumer = new Consumer({
      clientId: c.clientId,
      bootstrapBrokers: c.bootstrapBrokers,
      groupId: c.groupId,
      autocommit: false,
      deserializers: { headerKey: (b) => stringDeserializer(b) ?? "" },
      ...defined({
        sessionTimeout: c.sessionTimeout,
        heartbeatInterval: c.heartbeatInterval,
        rebalanceTimeout: c.rebalanceTimeout,
        groupInstanceId: c.groupInstanceId,
        minBytes: c.minBytes,
        maxBytes: c.maxBytes,
        maxBytesPerPartition: c.maxBytesPerPartition,
        maxWaitTime: c.maxWaitTime,
        isolationLevel: c.isolationLevel,
      }),
    });
    // Partitions may move to another member: make what we hold durable and commit it
    // first, so the next owner replays as little as possible (nonces make a replay safe).
    this.consumer.on("consumer:group:rebalance", () => void this.commitDurable("rebalance"));
  }

  /** Consumes until `stop()`; rejects if an append fails for a reason other than its record. */
  async run(): Promise<void> {
    const s = this.deps.settings;
    if (s.badRecordPolicy === "dead_letter") {
      this.deadLetters = new Producer({
        clientId: `${s.consumer.clientId}-dead-letters`,
        bootstrapBrokers: s.consumer.bootstrapBrokers,
        serializers: { headerKey: (k) => (k === undefined ? undefined : Buffer.from(k)) },
      });
    }
    this.stream = await this.consumer.consume({
      topics: s.topics,
      mode: MessagesStreamModes.COMMITTED,
      fallbackMode: s.consumer.fallbackMode,
      autocommit: false,
    });
    this.consumer.startLagMonitoring({ topics: s.topics }, 5000);
    this.commitTimer = setInterval(() => void this.commitDurable("interval"), s.offsetCommitIntervalMillis);
    this.deps.logger.info({ topics: s.topics, group: s.consumer.groupId }, "kafka bridge consuming");
    try {
      for await (const message of this.stream as AsyncIterable<KafkaMessage>) {
        if (this.fatal) break;
        await this.handle(message);
      }
    } finally {
      clearInterval(this.commitTimer);
    }
    if (this.fatal) throw this.fatal;
  }

  private async handle(message: KafkaMessage): Promise<void> {
    const { settings, sink, metrics } = this.deps;
    const done = this.tracker.track(message.topic, message.partition, message.offset, message.leaderEpoch);
    metrics.consumed(message.topic);
    const record: ConsumedRecord = {
      topic: message.topic,
      partition: message.partition,
      offset: message.offset,
      key: message.key ?? undefined,
      value: message.value ?? undefined,
      headers: message.headers,
    };
    let keyspace: string;
    let key: string;
    let nonce: bigint | undefined;
    let timestamp: bigint | undefined;
    try {
      keyspace = settings.parsers.keyspace(record);
      key = settings.parsers.key(record);
      nonce = settings.parsers.nonce(record);
      timestamp = settings.parsers.timestamp(record);
    } catch (err) {
      await this.badRecord(message, err, done);
      return;
    }
    let durable: Promise<unknown>;
    try {
      // Waits while the sink is full: consumption waits meanwhile, the bridge's backpressure on Kafka.
      ({ durable } = await sink.submit(keyspace, key, { value: record.value ?? Buffer.alloc(0), nonce, timestamp }));
    } catch (err) {
      this.fail(err);
      return;
    }
    durable.then(done, async (err: unknown) => {
      if (isRecordError(err)) await this.badRecord(message, err, done);
      else this.fail(err);
    });
  }

  private async badRecord(message: KafkaMessage, err: unknown, done: () => void): Promise<void> {
    const reason = err instanceof RecordParseError ? "parse" : err instanceof KlstoreError ? err.code : "error";
    this.deps.metrics.badRecord(reason);
    this.deps.logger.warn(
      {
        topic: message.topic,
        partition: message.partition,
        offset: String(message.offset),
        err: (err as Error).message,
      },
      this.deadLetters ? "bad record sent to the dead-letter topic" : "bad record skipped",
    );
    if (this.deadLetters) {
      const headers = new Map<string, Buffer>(message.headers);
      headers.set("klstore-error", Buffer.from((err as Error).message));
      headers.set("klstore-source", Buffer.from(`${message.topic}/${message.partition}/${message.offset}`));
      try {
        await this.deadLetters.send({
          messages: [
            {
              topic: this.deps.settings.deadLetterTopic as string,
              key: message.key ?? undefined,
              value: message.value ?? undefined,
              headers,
            },
          ],
        });
      } catch (sendErr) {
        // Not committing past it keeps the record: after a restart it is tried again.
        this.fail(sendErr);
        return;
      }
    }
    done();
  }

  private fail(err: unknown): void {
    if (this.fatal) return;
    this.fatal = err instanceof Error ? err : new Error(String(err));
    this.deps.logger.error({ err }, "append failed; stopping (a restart resumes from the last durable offsets)");
    this.stream?.close().catch((err: unknown) => this.deps.logger.debug({ err }, "closing the stream"));
  }

  /** Flushes the sink, then commits every partition's durable prefix. */
  commitDurable(why: string): Promise<void> {
    this.committing = this.committing.then(async () => {
      const started = process.hrtime.bigint();
      try {
        await this.deps.sink.flushAll();
        // Settlement callbacks run after the flush resolves: let them land.
        await new Promise((resolve) => setImmediate(resolve));
        const points = this.tracker.pending();
        if (points.length > 0) {
          await this.consumer.commit({ offsets: points.map((p) => ({ ...p })) });
          this.tracker.markCommitted(points);
          this.deps.metrics.committed(Number(process.hrtime.bigint() - started) / 1e9);
          this.deps.logger.debug({ why, partitions: points.length }, "offsets committed");
        }
        await this.sampleLag();
      } catch (err) {
        // Not fatal: the offsets stay pending and are committed next time.
        this.deps.logger.warn({ err, why }, "offset commit failed");
      }
    });
    return this.committing;
  }

  /**
   * Consumer lag of the partitions this member owns: the partition's end minus the
   * group's committed offset (what a restart would replay from), after each commit.
   */
  private async sampleLag(): Promise<void> {
    const owned = this.consumer.assignments ?? [];
    if (owned.length === 0) return;
    const ends = await this.consumer.listOffsets({ topics: owned.map((a) => a.topic) });
    const committed = this.tracker.committedOffsets();
    const lags: { topic: string; partition: number; lag: bigint }[] = [];
    for (const { topic, partitions } of owned) {
      for (const partition of partitions) {
        const end = ends.get(topic)?.[partition];
        const at = committed.get(`${topic}\u0000${partition}`);
        if (end !== undefined && at !== undefined) lags.push({ topic, partition, lag: end - at });
      }
    }
    this.deps.metrics.lag(lags);
  }

  /** Stops consuming, makes everything consumed durable, commits it, and leaves the group. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.commitTimer);
    await this.stream?.close();
    await this.commitDurable("stop");
    await this.consumer.close();
    await this.deadLetters?.close();
    await this.deps.sink.close();
  }
}
