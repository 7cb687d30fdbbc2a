// Apache Kafka on the same machine: a producer with acks=all (every in-sync replica, so
// "durable" in Kafka's terms) and a consumer reading the topic back.

import { Admin, Consumer, MessagesStreamModes, ProduceAcks, Producer } from "@platformatic/kafka";
import { payload, pool, type Throughput, throughput } from "../measure.ts";

/** Every topic of the bench: 3 partitions (the broker does not create topics itself). */
export async function createTopic(bootstrap: string, topic: string): Promise<void> {
  const admin = new Admin({ clientId: "klstore-bench", bootstrapBrokers: [bootstrap] });
  await admin.createTopics({ topics: [topic], partitions: 3, replicas: 1 });
  await admin.close();
}

export async function kafkaProduce(
  bootstrap: string,
  topic: string,
  keys: number,
  items: number,
  size: number,
): Promise<Throughput> {
  await createTopic(bootstrap, topic);
  const producer = new Producer({ clientId: "klstore-bench", bootstrapBrokers: [bootstrap], acks: ProduceAcks.ALL });
  const batch = 500;
  const batches = Math.ceil(items / batch);
  const result = await throughput("Kafka producer (acks=all)", items, items * size, () =>
    pool(batches, 8, async (b) => {
      const n = Math.min(batch, items - b * batch);
      await producer.send({
        messages: Array.from({ length: n }, (_, j) => {
          const i = b * batch + j;
          return { topic, key: Buffer.from(`key-${i % keys}`), value: payload(size, i) };
        }),
      });
    }),
  );
  await producer.close();
  return result;
}

export async function kafkaConsume(bootstrap: string, topic: string, items: number, size: number): Promise<Throughput> {
  const consumer = new Consumer({
    clientId: "klstore-bench",
    bootstrapBrokers: [bootstrap],
    groupId: `bench-${topic}`,
    autocommit: false,
  });
  const result = await throughput("Kafka consumer", items, items * size, async () => {
    const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: false });
    let seen = 0;
    for await (const _ of stream) if (++seen >= items) break;
    await stream.close();
  });
  await consumer.close();
  return result;
}
