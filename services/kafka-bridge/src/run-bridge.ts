// One bridge process from its config: the sink (in-process batching writer on [s3]/[store],
// a log writer there with [log] enabled, or the writer service when [writer] shards is set),
// metrics, and an orderly stop.

import {
  type AppendEngine,
  BATCHING_DEFAULTS,
  BatchingStoreWriter,
  LogWriter,
  openStore,
  refuseIfWrittenThroughLog,
  WRITER_DEFAULTS,
} from "@klstore/core";
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
    const store = measuredStore(opened.store, metrics);
    const batching = { ...BATCHING_DEFAULTS, ...klstore.batching };
    const engine = { ...WRITER_DEFAULTS, ...klstore.writer.engine };
    let writer: AppendEngine;
    if (settings.logName !== undefined) {
      const log = new LogWriter({
        store,
        prefix: opened.prefix,
        name: settings.logName,
        config: engine,
        log: klstore.log.writer,
      });
      // Opening the logs fences an older instance of this bridge (docs/log.md, "Writer start").
      await log.open();
      writer = log;
    } else {
      await refuseIfWrittenThroughLog(
        store,
        opened.prefix,
        "set [log] enabled=true (and [kafka] group.instance.id), or write through the writer shards ([writer] shards)",
      ).catch(async (err: unknown) => {
        await store.close();
        throw err;
      });
      // The seed's batching defaults (1 s interval): the bridge commits offsets on its own interval anyway.
      writer = new BatchingStoreWriter({ store, prefix: opened.prefix, config: engine, batching });
    }
    writer.onBackgroundError = (err, what) => logger.warn({ err, what }, "background work failed");
    sink = writerSink(writer, batching, logger);
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
