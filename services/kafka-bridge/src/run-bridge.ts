// One bridge process from its config: the sink (in-process batching writer on [s3]/[store],
// or the writer service when [writer] shards is set), metrics, and an orderly stop.

import { BATCHING_DEFAULTS, BatchingStoreWriter, openStore, WRITER_DEFAULTS } from "@klstore/core";
import { type Logger, measuredStore, ServiceMetrics, serveMetrics } from "@klstore/service-runtime";
import { type AppendSink, serviceSink, writerSink } from "./append-sink.ts";
import type { BridgeConfig } from "./bridge-config.ts";
import { BridgeMetrics } from "./bridge-metrics.ts";
import { KafkaBridge } from "./kafka-bridge.ts";

export interface RunningBridge {
  readonly bridge: KafkaBridge;
  readonly metrics: ServiceMetrics;
  readonly metricsAddress: string | undefined;
  /** Settles when consuming ends: after stop(), or with the error that stopped it. */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export async function startBridge(config: BridgeConfig, logger: Logger): Promise<RunningBridge> {
  const metrics = new ServiceMetrics("kafka-bridge");
  const { klstore, bridge: settings } = config;
  let sink: AppendSink;
  if (klstore.writer.shards) {
    sink = serviceSink(
      klstore.writer.shards,
      klstore.batching.batchFlushIntervalMillis ?? 100,
      klstore.batching.writerThreadQueueCapacity ?? BATCHING_DEFAULTS.writerThreadQueueCapacity,
      logger,
    );
  } else {
    if (klstore.store === undefined) {
      throw new Error("the bridge needs a store ([s3] or [store] url) or writer shards ([writer] shards)");
    }
    const opened = openStore(klstore.store);
    // The seed's batching defaults (1 s interval): the bridge commits offsets on its own interval anyway.
    const writer = new BatchingStoreWriter({
      store: measuredStore(opened.store, metrics),
      prefix: opened.prefix,
      config: { ...WRITER_DEFAULTS, ...klstore.writer.engine },
      batching: { ...BATCHING_DEFAULTS, ...klstore.batching },
    });
    sink = writerSink(writer, logger);
  }
  const bridge = new KafkaBridge({ settings, sink, logger, metrics: new BridgeMetrics(metrics) });
  const endpoint = settings.metricsListen ? await serveMetrics(settings.metricsListen, metrics) : undefined;
  const done = bridge.run();
  done.catch(() => {});
  return {
    bridge,
    metrics,
    metricsAddress: endpoint?.address,
    done,
    async stop() {
      await bridge.stop();
      await done.catch(() => {});
      await endpoint?.close();
    },
  };
}
