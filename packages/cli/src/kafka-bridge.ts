// `klstore kafka-bridge --config FILE`: the Kafka bridge as a process. It prints one JSON
// line once consuming, and on SIGTERM or Ctrl-C makes everything consumed durable, commits
// the offsets and leaves the group. If an append fails for a reason other than its record
// (storage down), it exits non-zero; a restart resumes from the last durable offsets.

import { loadBridgeConfig, startBridge } from "@klstore/kafka-bridge";
import { createLogger } from "@klstore/service-runtime";
import { untilStopSignal } from "./signals.ts";

export async function runKafkaBridge(
  options: { config: string; set: readonly string[] },
  print: (line: string) => Promise<void>,
): Promise<void> {
  const config = loadBridgeConfig(options.config, options.set);
  const logger = createLogger(
    "klstore-kafka-bridge",
    config.klstore.server.logLevel ?? process.env.KLSTORE_LOG_LEVEL ?? "info",
  );
  for (const ignored of config.ignoredEnvironment) logger.warn(ignored);
  const running = await startBridge(config, logger);
  await print(
    JSON.stringify({ role: "kafka-bridge", topics: config.bridge.topics, metrics: running.metricsAddress ?? null }),
  );
  const outcome = await Promise.race([
    untilStopSignal().then((signal) => ({ signal })),
    running.done.then(
      () => ({ ended: true }),
      (err: unknown) => ({ err }),
    ),
  ]);
  await running.stop();
  if ("err" in outcome) throw outcome.err;
}
