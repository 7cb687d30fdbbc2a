// The peers measured by their own tools, beside the Node clients the other rows use: Kafka's
// ProducerPerformance and ConsumerPerformance (from the broker's jars) and redis-benchmark
// (from Debian's redis-tools). A Node client can be the bottleneck of a peer; these rows show
// how far each peer goes on this machine when it is not, and the targets are scored against
// the better of the two. Each tool reports its own rate; the seconds are derived from it.

import { execFile } from "node:child_process";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import type { Throughput } from "../measure.ts";
import { createTopic } from "./kafka.ts";

const run = promisify(execFile);
/** A tool that has not finished by then is stuck, not slow. */
const TOOL_TIMEOUT_MILLIS = 300_000;
const KAFKA_LOG_CONFIG = resolve(import.meta.dirname, "../../../scripts/kafka/log4j2.properties");

/** Where the tools are: `scripts/services.sh path kafka` and `path redis`. */
export interface PeerTools {
  readonly kafkaLibs: string;
  readonly redisRoot: string;
}

export function peerToolsFromEnv(): PeerTools | undefined {
  const kafkaLibs = process.env.KLSTORE_BENCH_KAFKA_LIBS;
  const redisRoot = process.env.KLSTORE_BENCH_REDIS_ROOT;
  return kafkaLibs && redisRoot ? { kafkaLibs, redisRoot } : undefined;
}

function fromRate(system: string, items: number, size: number, itemsPerSecond: number): Throughput {
  const seconds = items / itemsPerSecond;
  return {
    system,
    items,
    bytes: items * size,
    seconds,
    itemsPerSecond,
    megabytesPerSecond: (items * size) / seconds / 1e6,
  };
}

async function kafkaTool(libs: string, mainClass: string, args: readonly string[]): Promise<string> {
  const { stdout } = await run(
    "java",
    ["-Xmx512m", `-Dlog4j2.configurationFile=${KAFKA_LOG_CONFIG}`, "-cp", join(libs, "*"), mainClass, ...args],
    { timeout: TOOL_TIMEOUT_MILLIS, maxBuffer: 16 * 1024 * 1024 },
  );
  return stdout;
}

/** ProducerPerformance with acks=all into a new topic of 3 partitions (as the Node producer's). */
export async function kafkaProducerPerformance(
  tools: PeerTools,
  bootstrap: string,
  topic: string,
  items: number,
  size: number,
): Promise<Throughput> {
  await createTopic(bootstrap, topic);
  const out = await kafkaTool(tools.kafkaLibs, "org.apache.kafka.tools.ProducerPerformance", [
    "--topic",
    topic,
    "--num-records",
    String(items),
    "--record-size",
    String(size),
    "--throughput",
    "-1",
    "--command-property", // takes every key=value that follows
    `bootstrap.servers=${bootstrap}`,
    "acks=all",
  ]);
  // The last line sums the run: "N records sent, R records/sec (M MB/sec), ...".
  const rate = /records sent, ([\d.]+) records\/sec/.exec(out.trim().split("\n").at(-1) ?? "");
  if (!rate) throw new Error(`ProducerPerformance printed no total: ${out.slice(-500)}`);
  return fromRate("Kafka ProducerPerformance (own tool, acks=all)", items, size, Number(rate[1]));
}

/** ConsumerPerformance reading `items` records of the topic from its start. */
export async function kafkaConsumerPerformance(
  tools: PeerTools,
  bootstrap: string,
  topic: string,
  items: number,
  size: number,
): Promise<Throughput> {
  const out = await kafkaTool(tools.kafkaLibs, "org.apache.kafka.tools.ConsumerPerformance", [
    "--bootstrap-server",
    bootstrap,
    "--topic",
    topic,
    "--messages",
    String(items),
    "--group",
    `bench-own-${topic}`,
  ]);
  // A header line, then "start, end, MB, MB.sec, nMsg, nMsg.sec, rebalance ms, fetch ms, fetch.MB.sec, fetch.nMsg.sec";
  // the fetch rate leaves out the group join, as the Node consumer's row does not wait for one.
  const lines = out.trim().split("\n");
  const header = (lines.at(-2) ?? "").split(",").map((c) => c.trim());
  const values = (lines.at(-1) ?? "").split(",").map((c) => c.trim());
  const rate = Number(values[header.indexOf("fetch.nMsg.sec")]);
  if (!(rate > 0)) throw new Error(`ConsumerPerformance printed no rate: ${out.slice(-500)}`);
  return fromRate("Kafka ConsumerPerformance (own tool)", items, size, rate);
}

/** redis-benchmark: XADD of `size`-byte values to one stream, pipelined 1000 deep on one connection. */
export async function redisBenchmarkXadd(
  tools: PeerTools,
  url: string,
  stream: string,
  items: number,
  size: number,
): Promise<Throughput> {
  const { hostname, port } = new URL(url);
  const { stdout } = await run(
    join(tools.redisRoot, "usr/bin/redis-benchmark"),
    ["-h", hostname, "-p", port || "6379", "-n", String(items), "-c", "1", "-P", "1000", "--csv"].concat([
      "XADD",
      stream,
      "*",
      "v",
      "v".repeat(size),
    ]),
    {
      timeout: TOOL_TIMEOUT_MILLIS,
      env: { ...process.env, LD_LIBRARY_PATH: join(tools.redisRoot, "usr/lib/x86_64-linux-gnu") },
    },
  );
  // CSV: a header, then "command","rps",...
  const row = stdout.trim().split("\n").at(-1) ?? "";
  const rate = Number(/^"[^"]*","([\d.]+)"/.exec(row)?.[1]);
  if (!(rate > 0)) throw new Error(`redis-benchmark printed no rate: ${stdout.slice(-500)}`);
  return fromRate("Redis redis-benchmark XADD (own tool, pipelined)", items, size, rate);
}
