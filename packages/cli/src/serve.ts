// `klstore serve writer|reader --config FILE`: one production process, configured from the
// config file (packages/config), the environment and --set flags. It prints one JSON line
// with its addresses once it serves, and on SIGTERM stops taking calls, flushes and exits.

import { ConfigError, defined, type KlstoreConfig, loadKlstoreConfig } from "@klstore/config";
import { createLogger, type ServerConfig } from "@klstore/service-runtime";
import { bindFailure } from "./ports.ts";
import { untilStopSignal } from "./signals.ts";

export type ServeRole = "writer" | "reader";

export interface ServeOptions {
  readonly config?: string | undefined;
  readonly set: readonly string[];
}

const DEFAULT_LISTEN: Record<ServeRole, string> = { writer: "127.0.0.1:7401", reader: "127.0.0.1:7501" };

function serverConfig(config: KlstoreConfig, listen: string): Partial<ServerConfig> & Pick<ServerConfig, "listen"> {
  const { logLevel: _, ...server } = config.server;
  return defined({ ...server, listen });
}

export async function runServe(role: ServeRole, options: ServeOptions, print: (line: string) => Promise<void>) {
  const config = loadKlstoreConfig({ file: options.config, overrides: options.set });
  if (config.store === undefined) {
    throw new ConfigError("no store configured: give [store] url=... or an [s3] section with bucket_name");
  }
  const logger = createLogger(`klstore-${role}`, config.server.logLevel ?? process.env.KLSTORE_LOG_LEVEL ?? "info");
  for (const ignored of config.ignoredEnvironment) logger.warn(ignored);
  let running: { address: string; metricsAddress: string | undefined; close(): Promise<void> };
  if (role === "writer") {
    const listen = config.writer.listen ?? DEFAULT_LISTEN.writer;
    const name = config.writer.name ?? "writer-0";
    // A lone writer needs no shard list: it owns every key.
    const shards = config.writer.shards ?? [{ name, address: listen }];
    const { startWriterShard } = await import("@klstore/writer-service"); // a reader never loads it
    running = await startWriterShard(
      defined({
        store: config.store,
        name,
        shards,
        server: serverConfig(config, listen),
        writer: config.writer.engine,
        batching: config.batching,
        log: config.log.enabled ? config.log.writer : undefined,
        sessionMaxInFlight: config.writer.sessionMaxInFlight,
        shutdownGraceMillis: config.writer.shutdownGraceMillis,
        retentionIntervalMillis: config.writer.retentionIntervalMillis,
        metricsListen: config.writer.metricsListen,
        forwardingSecret: config.writer.forwardingSecret,
        forwardingPeerNames: config.writer.forwardingPeerNames,
      }),
      logger.child({ shard: name }),
    ).catch((err: unknown) => {
      throw bindFailure(err, listen, "[writer] listen (or --set writer.listen=HOST:PORT)");
    });
  } else {
    const listen = config.reader.listen ?? DEFAULT_LISTEN.reader;
    const { startReader } = await import("@klstore/reader-service");
    running = await startReader(
      defined({
        store: config.store,
        server: serverConfig(config, listen),
        reader: config.reader.engine,
        objectCacheBytes: config.reader.objectCacheBytes,
        log: config.log.enabled ? defined({ slotRecordCacheMillis: config.log.slotRecordCacheMillis }) : undefined,
        followPollMillis: config.reader.followPollMillis,
        streamPageSize: config.reader.streamPageSize,
        streamBufferBytes: config.reader.streamBufferBytes,
        totalStreamBufferBytes: config.reader.totalStreamBufferBytes,
        streamStallMillis: config.reader.streamStallMillis,
        maxStreams: config.reader.maxStreams,
        maxStreamsPerConnection: config.reader.maxStreamsPerConnection,
        shutdownGraceMillis: config.reader.shutdownGraceMillis,
        metricsListen: config.reader.metricsListen,
      }),
      logger,
    ).catch((err: unknown) => {
      throw bindFailure(err, listen, "[reader] listen (or --set reader.listen=HOST:PORT)");
    });
  }
  await print(JSON.stringify({ role, address: running.address, metrics: running.metricsAddress ?? null }));
  const signal = await untilStopSignal();
  logger.info({ signal }, "stopping");
  await running.close();
}
