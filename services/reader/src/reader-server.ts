// One reader process: the store behind a cache of immutable objects, the StoreReader, the
// follow hub, and the gRPC server with health and reflection. Stateless: run any number.

import {
  LogTail,
  type LogTailConfig,
  openStore,
  READER_DEFAULTS,
  type ReaderConfig,
  refuseIfWrittenThroughLog,
  type StoreLocation,
  StoreReader,
} from "@klstore/core";
import { implementation, ReaderService } from "@klstore/proto";
import {
  callObserver,
  createGrpcServer,
  type Logger,
  listen,
  malformedRequestStatus,
  measuredStore,
  SERVER_DEFAULTS,
  type ServerConfig,
  ServiceMetrics,
  serveMetrics,
  shutdown,
} from "@klstore/service-runtime";
import { FollowHub } from "./follow-hub.ts";
import { LogWatchHub } from "./log-watch-hub.ts";
import { cachingStore, ObjectCacheStats } from "./object-cache.ts";
import { ReaderMetrics } from "./reader-metrics.ts";
import { readerHandlers } from "./reader-service.ts";
import { StreamAdmission } from "./stream-admission.ts";
import { StreamBufferPool } from "./stream-buffers.ts";
import type { AnyWatchFeed } from "./watch-feed.ts";
import { WatchHub } from "./watch-hub.ts";

export interface ReaderServerConfig {
  /** Store URL (file://... or s3://...), or S3 settings. */
  readonly store: StoreLocation;
  /** `listen` is required; the rest default to SERVER_DEFAULTS. */
  readonly server: Partial<ServerConfig> & Pick<ServerConfig, "listen">;
  readonly reader?: Partial<ReaderConfig>;
  /** Bytes of data objects kept in memory. */
  readonly objectCacheBytes?: number;
  /** The shared log (docs/log.md): set, keys are read from their per-key objects and log tails. */
  readonly log?: Partial<LogTailConfig> | undefined;
  /** How often a followed key's end is polled (once per key, however many followers). */
  readonly followPollMillis?: number;
  /** Items per ReadStream message when the request says 0. */
  readonly streamPageSize?: number;
  /**
   * Bytes one ReadStream holds of pages its client has not taken (values, plus 64 per item):
   * two pages (one being sent, one read ahead) of at most half of this each, or of one
   * larger value.
   */
  readonly streamBufferBytes?: number;
  /** Bytes all ReadStreams together hold of such pages; past it they wait, and new ones are refused. */
  readonly totalStreamBufferBytes?: number;
  /**
   * A ReadStream whose client has taken nothing for this long is stalled: the page it holds
   * becomes a copy and it lets go of the stored object it reads, so it keeps nothing alive
   * beyond its pages' bytes.
   */
  readonly streamStallMillis?: number;
  /** ReadStream and WatchKeyspace calls open at once; past it a new one is RESOURCE_EXHAUSTED. */
  readonly maxStreams?: number;
  /** The same per client connection. */
  readonly maxStreamsPerConnection?: number;
  readonly shutdownGraceMillis?: number;
  /** host:port serving Prometheus metrics at /metrics; unset serves none. */
  readonly metricsListen?: string | undefined;
}

export const READER_SERVER_DEFAULTS = {
  objectCacheBytes: 256 * 1024 * 1024,
  followPollMillis: 250,
  streamPageSize: 1000,
  // Two pages of one 1 MiB value (the default max_value_bytes): large values still overlap
  // reading and sending.
  streamBufferBytes: 2 * 1024 * 1024,
  totalStreamBufferBytes: 256 * 1024 * 1024,
  // A client taking less than a page in this long gains nothing from the kept object.
  streamStallMillis: 100,
  // An open stream costs about 40 KiB even while idle (grpc-js and HTTP/2 call state).
  maxStreams: 4096,
  maxStreamsPerConnection: 1024,
  shutdownGraceMillis: 5_000,
};

export interface RunningReader {
  readonly address: string;
  readonly hub: FollowHub;
  readonly watchHub: AnyWatchFeed;
  readonly cacheStats: ObjectCacheStats;
  readonly admission: StreamAdmission;
  readonly streamBuffers: StreamBufferPool;
  readonly metrics: ServiceMetrics;
  /** Where /metrics is served, when it is. */
  readonly metricsAddress: string | undefined;
  close(): Promise<void>;
}

export async function startReader(config: ReaderServerConfig, logger: Logger): Promise<RunningReader> {
  const settings = { ...READER_SERVER_DEFAULTS, ...stripUndefined(config) };
  const metrics = new ServiceMetrics("reader");
  const opened = openStore(config.store);
  const store = measuredStore(opened.store, metrics);
  const prefix = opened.prefix;
  // Without the log's tail a reader would miss every item not yet materialized.
  if (!config.log) {
    await refuseIfWrittenThroughLog(store, prefix, "set [log] enabled=true on every writer shard and reader").catch(
      async (err: unknown) => {
        await store.close();
        throw err;
      },
    );
  }
  const cacheStats = new ObjectCacheStats();
  const reader = new StoreReader({
    store: cachingStore(store, settings.objectCacheBytes, cacheStats),
    prefix,
    config: { ...READER_DEFAULTS, ...config.reader },
    // Segment indexes by ranged GETs, beside the cache: only entries' segments are cached.
    logTail: config.log ? new LogTail(store, prefix, config.log) : undefined,
  });
  const hub = new FollowHub(reader, settings.followPollMillis, logger);
  // On the shared log the changes are the logs' entries; otherwise the keyspace change log.
  const watchHub: AnyWatchFeed = config.log
    ? new LogWatchHub(store, prefix, settings.followPollMillis, logger)
    : new WatchHub(reader, settings.followPollMillis, logger);
  const serverConfig = { ...SERVER_DEFAULTS, ...config.server };
  const { server, health } = createGrpcServer(serverConfig, [ReaderService], [callObserver(metrics, logger)]);
  const admission = new StreamAdmission(settings);
  const streamBuffers = new StreamBufferPool(settings.totalStreamBufferBytes);
  const readerMetrics = new ReaderMetrics(metrics, { hub, cache: cacheStats, watchHub, admission, streamBuffers });
  server.addService(
    ...implementation(
      ReaderService,
      readerHandlers({
        reader,
        hub,
        watchHub,
        logger,
        streamPageSize: settings.streamPageSize,
        metrics: readerMetrics,
        admission,
        streamBuffers,
        streamBufferBytes: settings.streamBufferBytes,
        streamStallMillis: settings.streamStallMillis,
      }),
      malformedRequestStatus,
    ),
  );
  const running = await listen(server, health, serverConfig);
  const metricsEndpoint = config.metricsListen ? await serveMetrics(config.metricsListen, metrics) : undefined;
  health.setStatus("", "SERVING");
  logger.info({ address: running.address }, "reader serving");
  let closing: Promise<void> | undefined;
  return {
    address: running.address,
    hub,
    watchHub,
    cacheStats,
    admission,
    streamBuffers,
    metrics,
    metricsAddress: metricsEndpoint?.address,
    close() {
      closing ??= (async () => {
        health.setStatus("", "NOT_SERVING");
        hub.close(); // followers end their streams cleanly
        watchHub.close();
        await shutdown(server, settings.shutdownGraceMillis);
        await store.close();
        await metricsEndpoint?.close();
        logger.info("reader stopped");
      })();
      return closing;
    },
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
