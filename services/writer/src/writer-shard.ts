// One writer shard process: the store, the batching writer (group commit, piscina pool),
// the gRPC server with health and reflection, and an orderly shutdown.

import {
  type AppendEngine,
  BATCHING_DEFAULTS,
  type BatchingConfig,
  BatchingStoreWriter,
  type LogConfig,
  LogWriter,
  openStore,
  refuseIfWrittenThroughLog,
  type StoreLocation,
  WRITER_DEFAULTS,
  type WriterConfig,
} from "@klstore/core";
import { implementation, WriterService } from "@klstore/proto";
import {
  callObserver,
  createGrpcServer,
  type Logger,
  listen,
  malformedRequestStatus,
  measuredStore,
  peerCredentials,
  SERVER_DEFAULTS,
  type ServerConfig,
  ServiceMetrics,
  serveMetrics,
  shutdown,
} from "@klstore/service-runtime";
import { type Shard, ShardRing, SLOT_COUNT } from "@klstore/sharding";
import { Forwarder } from "./forwarder.ts";
import { ForwardingTrust } from "./forwarding-trust.ts";
import { RetentionSweeper } from "./retention-sweeper.ts";
import { WriterMetrics } from "./writer-metrics.ts";
import { writerHandlers } from "./writer-service.ts";

export interface WriterShardConfig {
  /** Store URL (file://... or s3://...), as for the CLI, or S3 settings. */
  readonly store: StoreLocation;
  /** This shard's name; must be one of `shards`. */
  readonly name: string;
  /** Every writer shard, this one included. */
  readonly shards: readonly Shard[];
  /** `listen` is required; the rest default to SERVER_DEFAULTS. */
  readonly server: Partial<ServerConfig> & Pick<ServerConfig, "listen">;
  readonly writer?: Partial<WriterConfig>;
  readonly batching?: Partial<BatchingConfig>;
  /** The shared log (docs/log.md): set, appends go through it instead of per-key objects. */
  readonly log?: Partial<LogConfig> | undefined;
  /** Unanswered requests per AppendSession before the shard stops reading it. */
  readonly sessionMaxInFlight?: number;
  /** How long running calls may take to finish at shutdown before they are cut. */
  readonly shutdownGraceMillis?: number;
  /** host:port serving Prometheus metrics at /metrics; unset serves none. */
  readonly metricsListen?: string | undefined;
  /** How often keyspaces' retention is applied to the keys this shard owns; 0 never. */
  readonly retentionIntervalMillis?: number;
  /**
   * Shared by every shard: forwarded calls carry it, and a call marked as forwarded is
   * trusted (served here whatever this shard's list says) only with it or a peer
   * certificate (`forwardingPeerNames`).
   */
  readonly forwardingSecret?: string | undefined;
  /** Subject CN, DNS or URI names of peer shards' client certificates (with mutual TLS). */
  readonly forwardingPeerNames?: readonly string[] | undefined;
}

export const WRITER_SHARD_DEFAULTS = {
  sessionMaxInFlight: 1024,
  shutdownGraceMillis: 10_000,
  retentionIntervalMillis: 300_000,
  /**
   * Appends are acknowledged on durability, so waiting for a flush interval would only add
   * latency; with 0, appends to a key that arrive while its previous commit runs still form
   * one group (natural group commit). The seed's 1000 ms suits the Kafka bridge.
   */
  batching: { batchFlushIntervalMillis: 0 } satisfies Partial<BatchingConfig>,
};

export interface RunningWriterShard {
  readonly address: string;
  /** Where /metrics is served, when it is. */
  readonly metricsAddress: string | undefined;
  readonly metrics: ServiceMetrics;
  readonly writer: AppendEngine;
  readonly retention: RetentionSweeper;
  /** Stops taking calls, lets running ones finish, flushes everything pending, closes. */
  close(): Promise<void>;
}

export async function startWriterShard(config: WriterShardConfig, logger: Logger): Promise<RunningWriterShard> {
  const ring = new ShardRing(config.shards);
  if (!ring.byName(config.name)) throw new Error(`shard ${config.name} is not in the shard list`);
  const metrics = new ServiceMetrics("writer");
  const opened = openStore(config.store);
  const store = measuredStore(opened.store, metrics);
  const prefix = opened.prefix;
  // A per-key writer does not see the logs' entries: it would commit offsets they hold.
  if (!config.log) {
    await refuseIfWrittenThroughLog(store, prefix, "set [log] enabled=true on every writer shard and reader").catch(
      async (err: unknown) => {
        await store.close();
        throw err;
      },
    );
  }
  const writerConfig = { ...WRITER_DEFAULTS, ...config.writer };
  const writer: AppendEngine = config.log
    ? new LogWriter({ store, prefix, name: config.name, config: writerConfig, log: config.log })
    : new BatchingStoreWriter({
        store,
        prefix,
        config: writerConfig,
        batching: { ...BATCHING_DEFAULTS, ...WRITER_SHARD_DEFAULTS.batching, ...config.batching },
      });
  // Opening the logs fences any older instance of this shard (docs/log.md, "Writer start").
  if (writer instanceof LogWriter) await writer.open();
  writer.onBackgroundError = (err, what) => logger.warn({ err, what }, "background work failed");
  if (writer instanceof LogWriter) {
    // The slots the ring gives this shard that no writer has had yet: their first appends then take nothing.
    const own = Array.from({ length: SLOT_COUNT }, (_, slot) => slot).filter(
      (slot) => ring.ownerOfSlot(slot).name === config.name,
    );
    void writer.prepareNewSlots(own);
  }
  const serverConfig = { ...SERVER_DEFAULTS, ...config.server };
  const trust = new ForwardingTrust({ secret: config.forwardingSecret, peerNames: config.forwardingPeerNames });
  if (config.shards.length > 1 && !trust.configured) {
    logger.warn(
      { shard: config.name },
      "no [writer] forwarding_secret or forwarding_peer_names: no forwarded call is trusted, so while shards " +
        "disagree about the shard list a call they forward in a loop fails with UNAVAILABLE",
    );
  }
  const forwarder = new Forwarder(peerCredentials(serverConfig), trust, serverConfig);
  const { server, health } = createGrpcServer(serverConfig, [WriterService], [callObserver(metrics, logger)]);
  const writerMetrics = new WriterMetrics(metrics, writer);
  const retention = new RetentionSweeper({
    writer,
    store,
    prefix,
    ring,
    self: config.name,
    logger,
    metrics: writerMetrics,
  });
  server.addService(
    ...implementation(
      WriterService,
      writerHandlers({
        writer,
        ring,
        self: config.name,
        forwarder,
        trust,
        logger,
        sessionMaxInFlight: config.sessionMaxInFlight ?? WRITER_SHARD_DEFAULTS.sessionMaxInFlight,
        metrics: writerMetrics,
      }),
      malformedRequestStatus,
    ),
  );
  const running = await listen(server, health, serverConfig);
  const metricsEndpoint = config.metricsListen ? await serveMetrics(config.metricsListen, metrics) : undefined;
  health.setStatus("", "SERVING");
  const retentionInterval = config.retentionIntervalMillis ?? WRITER_SHARD_DEFAULTS.retentionIntervalMillis;
  if (retentionInterval > 0) retention.start(retentionInterval);
  logger.info({ address: running.address, shard: config.name, shards: config.shards.length }, "writer shard serving");

  let closing: Promise<void> | undefined;
  return {
    address: running.address,
    metricsAddress: metricsEndpoint?.address,
    metrics,
    writer,
    retention,
    close() {
      closing ??= (async () => {
        health.setStatus("", "NOT_SERVING");
        // Our connections to peer shards would otherwise hold their shutdown open (and theirs ours).
        forwarder.close();
        await retention.stop();
        await shutdown(server, config.shutdownGraceMillis ?? WRITER_SHARD_DEFAULTS.shutdownGraceMillis);
        await writer.close();
        await store.close();
        await metricsEndpoint?.close();
        logger.info({ shard: config.name }, "writer shard stopped; everything accepted is durable");
      })();
      return closing;
    },
  };
}
