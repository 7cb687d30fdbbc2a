// The real test broker (scripts/services.sh start kafka) and a producer that is not the
// bridge's own code path: topics with several partitions, records with keys and headers.

import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Admin, Consumer, MessagesStreamModes, Producer, stringDeserializer } from "@platformatic/kafka";

export const KAFKA_BOOTSTRAP = process.env.KLSTORE_TEST_KAFKA_BOOTSTRAP;

export async function createTopic(topic: string, partitions: number): Promise<void> {
  const admin = new Admin({ clientId: "klstore-test-admin", bootstrapBrokers: [KAFKA_BOOTSTRAP as string] });
  try {
    await admin.createTopics({ topics: [topic], partitions, replicas: 1 });
  } finally {
    await admin.close();
  }
}

export async function committedOffsets(groupId: string, topic: string): Promise<Map<number, bigint>> {
  const admin = new Admin({ clientId: "klstore-test-admin", bootstrapBrokers: [KAFKA_BOOTSTRAP as string] });
  try {
    const [group] = await admin.listConsumerGroupOffsets({ groups: [groupId] });
    const offsets = new Map<number, bigint>();
    for (const t of group?.topics ?? []) {
      if (t.name !== topic) continue;
      for (const p of t.partitions) offsets.set(p.partitionIndex, p.committedOffset);
    }
    return offsets;
  } finally {
    await admin.close();
  }
}

export interface ProducedRecord {
  readonly partition: number;
  readonly offset: bigint;
  readonly value: string;
  /** Undefined: produced without the timestamp header, so the bridge must treat it as bad. */
  readonly timestamp: bigint | undefined;
}

export function timestampHeader(ms: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(ms);
  return b;
}

/** Produces records round-robin over partitions; returns them with their offsets. */
export class TestProducer {
  // Idempotent: a send retried after a timeout (a loaded machine) would otherwise put the
  // batch into the topic twice, at offsets this bookkeeping never saw.
  private readonly producer = new Producer({
    clientId: "klstore-test-producer",
    bootstrapBrokers: [KAFKA_BOOTSTRAP as string],
    idempotent: true,
  });
  readonly produced: ProducedRecord[] = [];
  private sequence = 0;
  private readonly topic: string;
  private readonly partitions: number;

  constructor(topic: string, partitions: number) {
    this.topic = topic;
    this.partitions = partitions;
  }

  /** `count` records; every `badEvery`-th lacks the timestamp header. */
  async produce(count: number, badEvery = 0): Promise<void> {
    const batch = Array.from({ length: count }, () => {
      const n = this.sequence++;
      const timestamp = badEvery > 0 && n % badEvery === badEvery - 1 ? undefined : 1_700_000_000_000n + BigInt(n);
      return { n, partition: n % this.partitions, timestamp };
    });
    const result = await this.producer.send({
      messages: batch.map(({ n, partition, timestamp }) => ({
        topic: this.topic,
        partition,
        key: Buffer.from(`record-${n}`),
        value: Buffer.from(`value-${n}`),
        headers: timestamp === undefined ? new Map() : new Map([[Buffer.from("ts"), timestampHeader(timestamp)]]),
      })),
    });
    // Offsets per partition: the broker's base offset for each partition's part of the batch.
    const next = new Map<number, bigint>();
    for (const o of result.offsets ?? []) next.set(o.partition, o.offset);
    for (const { n, partition, timestamp } of batch) {
      const offset = next.get(partition) as bigint;
      next.set(partition, offset + 1n);
      this.produced.push({ partition, offset, value: `value-${n}`, timestamp });
    }
  }

  close(): Promise<void> {
    return this.producer.close();
  }
}

/** The shipped example config, which docs/kafka-bridge.md and the README point at. */
export const EXAMPLE_CONFIG = resolve(import.meta.dirname, "../../../examples/kafka-bridge.ini");

/** examples/kafka-bridge.ini as shipped, but for the endpoint, bucket and bootstrap servers. */
export function exampleConfig(endpoint: string, bucket: string, bootstrap: string): string {
  let text = readFileSync(EXAMPLE_CONFIG, "utf8");
  const replacements = [
    ['endpoint="http://localhost:4566"', `endpoint="${endpoint}"`],
    ['bucket_name="my-bucket"', `bucket_name="${bucket}"`],
    ['bootstrap.servers="127.0.0.1:9092"', `bootstrap.servers="${bootstrap}"`],
  ];
  for (const [from, to] of replacements as [string, string][]) {
    if (!text.includes(from)) throw new Error(`${EXAMPLE_CONFIG} no longer has ${from}`);
    text = text.replace(from, to);
  }
  return text;
}

/** Reads `count` records of a topic from its start, with the bridge's error header. */
export async function consumeAll(topic: string, count: number): Promise<{ value: string; error: string }[]> {
  const consumer = new Consumer({
    clientId: "klstore-test-reader",
    bootstrapBrokers: [KAFKA_BOOTSTRAP as string],
    groupId: `reader-${topic}`,
    autocommit: false,
    deserializers: { headerKey: (b) => stringDeserializer(b) ?? "" },
  });
  const out: { value: string; error: string }[] = [];
  try {
    const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: false });
    for await (const message of stream) {
      out.push({
        value: message.value?.toString() ?? "",
        error: (message.headers.get("klstore-error") as Buffer | undefined)?.toString() ?? "",
      });
      if (out.length >= count) break;
    }
    await stream.close();
  } finally {
    await consumer.close();
  }
  return out;
}
