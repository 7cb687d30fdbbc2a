// The settings of every klstore process, from one file format. One file can serve a whole
// deployment (a Kubernetes ConfigMap mounted into writers and readers alike): [store] or
// [s3] say where the data is, [writer] and [batcher] configure writer shards, [reader] the
// readers, [server] what every gRPC port shares (limits, keepalive, TLS). docs/operations.md
// lists every key.

import type {
  BatchingConfig,
  LogConfig,
  ReaderConfig,
  S3StoreConfig,
  StoreLocation,
  WriterConfig,
} from "@klstore/core";
import { S3_DEFAULTS } from "@klstore/core";
import type { Shard } from "@klstore/sharding";
import {
  ConfigError,
  configFromEnv,
  configFromOverrides,
  mergeConfig,
  type RawConfig,
  readConfigFile,
} from "./config-sources.ts";
import { SectionReader } from "./section-reader.ts";
import { readShardList } from "./shard-list.ts";

export const KLSTORE_SECTIONS = ["store", "s3", "writer", "batcher", "reader", "server", "log"] as const;

export interface ServerSettings {
  readonly maxMessageBytes?: number | undefined;
  readonly keepaliveTimeMillis?: number | undefined;
  readonly keepaliveTimeoutMillis?: number | undefined;
  readonly tlsCertFile?: string | undefined;
  readonly tlsKeyFile?: string | undefined;
  readonly tlsClientCaFile?: string | undefined;
  /** CA that signed the other shards' certificates, for forwarding between shards over TLS. */
  readonly tlsPeerCaFile?: string | undefined;
  readonly logLevel?: string | undefined;
}

export interface WriterSettings {
  readonly listen?: string | undefined;
  readonly metricsListen?: string | undefined;
  /** This shard's name; defaults to $HOSTNAME when the shards come from a StatefulSet. */
  readonly name?: string | undefined;
  readonly shards?: readonly Shard[] | undefined;
  readonly engine: Partial<WriterConfig>;
  readonly sessionMaxInFlight?: number | undefined;
  readonly shutdownGraceMillis?: number | undefined;
  readonly retentionIntervalMillis?: number | undefined;
  /** Proof that a forwarded call comes from a peer shard; the same on every shard. */
  readonly forwardingSecret?: string | undefined;
  /** Peer shards' client certificate names (CN, DNS or URI SAN), trusted with mutual TLS. */
  readonly forwardingPeerNames?: readonly string[] | undefined;
}

export interface ReaderSettings {
  readonly listen?: string | undefined;
  readonly metricsListen?: string | undefined;
  readonly engine: Partial<ReaderConfig>;
  readonly objectCacheBytes?: number | undefined;
  readonly followPollMillis?: number | undefined;
  readonly streamPageSize?: number | undefined;
  readonly streamBufferBytes?: number | undefined;
  readonly totalStreamBufferBytes?: number | undefined;
  readonly streamStallMillis?: number | undefined;
  readonly maxStreams?: number | undefined;
  readonly maxStreamsPerConnection?: number | undefined;
  readonly shutdownGraceMillis?: number | undefined;
}

/** The shared log (docs/log.md): writers and readers of one store must agree on `enabled`. */
export interface LogSettings {
  /** Writers append through the log, readers read its tail; off: per-key objects only. */
  readonly enabled: boolean;
  readonly writer: Partial<LogConfig>;
  readonly slotRecordCacheMillis?: number | undefined;
}

export interface KlstoreConfig {
  /** Undefined when the file names no store; the caller decides whether that is an error. */
  readonly store: StoreLocation | undefined;
  readonly log: LogSettings;
  readonly writer: WriterSettings;
  readonly batching: Partial<BatchingConfig>;
  readonly reader: ReaderSettings;
  readonly server: ServerSettings;
  /** The sections this parser does not own (e.g. a bridge's [kafka]), untouched. */
  readonly extra: RawConfig;
  /** KLSTORE_<SECTION>_<KEY> variables naming no setting: ignored, for the process to log as warnings. */
  readonly ignoredEnvironment: readonly string[];
}

export interface ConfigInputs {
  readonly file?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
  /** `section.key=value`, highest precedence. */
  readonly overrides?: readonly string[];
  /** Sections a caller parses itself (returned in `extra`); any other unknown section is an error. */
  readonly extraSections?: readonly string[];
}

const MAX_BYTES = Number.MAX_SAFE_INTEGER;
/** Shortest `[writer] forwarding_secret`: a guessable secret would let any client pass for a shard. */
export const FORWARDING_SECRET_MIN_LENGTH = 16;

/** Drops undefined fields, so spreading the result over defaults keeps the defaults. */
export function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Every key of [s3], the seed's compaction thresholds included. */
const S3_KEYS = [
  "bucket_name",
  "object_prefix",
  "endpoint",
  "region",
  "path_style",
  "use_default_credentials",
  "access_key",
  "secret_key",
  "session_token",
  "security_token",
  "profile",
  "max_attempts",
  "compact_items_threshold",
  "compact_size_threshold",
  "compact_objects_threshold",
] as const;

function readStore(store: SectionReader, s3: SectionReader): StoreLocation | undefined {
  const url = store.string("url");
  if (url !== undefined && s3.has("bucket_name")) throw new ConfigError("give either [store] url or [s3], not both");
  if (url !== undefined) return url;
  // Only a key of [s3] asks for S3: a variable naming none (ignored) must not demand a bucket.
  if (!S3_KEYS.some((key) => s3.has(key))) return undefined;
  const accessKey = s3.string("access_key");
  const sessionToken = s3.string("session_token");
  const securityToken = s3.string("security_token");
  const location: S3StoreConfig = {
    bucketName: s3.requiredString("bucket_name", "the bucket klstore stores objects in"),
    objectPrefix: s3.string("object_prefix") ?? S3_DEFAULTS.objectPrefix,
    endpoint: s3.string("endpoint"),
    region: s3.string("region") ?? S3_DEFAULTS.region,
    pathStyle: s3.boolean("path_style") ?? S3_DEFAULTS.pathStyle,
    useDefaultCredentials: s3.boolean("use_default_credentials") ?? accessKey === undefined,
    accessKey,
    secretKey: s3.string("secret_key"),
    // The seed names the STS token both ways; the session token wins when both are set.
    sessionToken: sessionToken ?? securityToken,
    profile: s3.string("profile"),
    maxAttempts: s3.integer("max_attempts", 1, 100) ?? S3_DEFAULTS.maxAttempts,
  };
  if (!location.useDefaultCredentials && (location.accessKey === undefined || location.secretKey === undefined)) {
    throw new ConfigError("[s3] use_default_credentials=false needs access_key and secret_key");
  }
  return location;
}

/** The seed keeps compaction thresholds in [s3]; we keep them in [writer] and accept either. */
function compactionSetting(writer: SectionReader, s3: SectionReader, key: string): number | undefined {
  const fromWriter = writer.integer(key, 1, MAX_BYTES);
  const fromS3 = s3.integer(key, 1, MAX_BYTES);
  if (fromWriter !== undefined && fromS3 !== undefined)
    throw new ConfigError(`${key} is set in both [s3] and [writer]`);
  return fromWriter ?? fromS3;
}

function readLimits(section: SectionReader) {
  return {
    maxValueBytes: section.integer("max_value_bytes", 1, MAX_BYTES),
    maxItemsPerAppend: section.integer("max_items_per_append", 1, MAX_BYTES),
  };
}

function readForwardingSecret(writer: SectionReader): string | undefined {
  const secret = writer.string("forwarding_secret");
  if (secret !== undefined && secret.length < FORWARDING_SECRET_MIN_LENGTH) {
    throw new ConfigError(
      `[writer] forwarding_secret: shorter than ${FORWARDING_SECRET_MIN_LENGTH} characters (e.g. openssl rand -base64 32)`,
    );
  }
  return secret;
}

function readWriter(writer: SectionReader, s3: SectionReader, env: NodeJS.ProcessEnv): WriterSettings {
  const fromStatefulSet = writer.has("statefulset");
  const shards = readShardList(writer);
  const peerNames = writer
    .string("forwarding_peer_names")
    ?.split(",")
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
  return {
    listen: writer.string("listen"),
    metricsListen: writer.string("metrics_listen"),
    // A StatefulSet pod's hostname is its pod name, which is its shard name.
    name: writer.string("name") ?? (fromStatefulSet ? env.HOSTNAME : undefined),
    shards,
    engine: defined({
      ...readLimits(writer),
      maxCachedKeys: writer.integer("max_cached_keys", 1, MAX_BYTES),
      compactItemsThreshold: compactionSetting(writer, s3, "compact_items_threshold"),
      compactSizeThreshold: compactionSetting(writer, s3, "compact_size_threshold"),
      compactObjectsThreshold: compactionSetting(writer, s3, "compact_objects_threshold"),
      compactionCacheBytes: writer.integer("compaction_cache_bytes", 0, MAX_BYTES),
      maxFutureTimestampMillis: writer.integer("max_future_timestamp_millis", 0, Number.MAX_SAFE_INTEGER),
    }),
    sessionMaxInFlight: writer.integer("session_max_in_flight", 1, 1_000_000),
    shutdownGraceMillis: writer.integer("shutdown_grace_millis", 0, 3_600_000),
    retentionIntervalMillis: writer.integer("retention_interval_millis", 0, 7 * 24 * 3_600_000),
    forwardingSecret: readForwardingSecret(writer),
    forwardingPeerNames: peerNames,
  };
}

function readBatcher(batcher: SectionReader): Partial<BatchingConfig> {
  return defined({
    writerThreadCount: batcher.integer("writer_thread_count", 0, 256),
    writerThreadQueueCapacity: batcher.integer("writer_thread_queue_capacity", 1, MAX_BYTES),
    writerQueueMaxBytes: batcher.integer("writer_queue_max_bytes", 1, MAX_BYTES),
    batchCheckIntervalMillis: batcher.integer("batch_check_interval_millis", 1, 3_600_000),
    batchFlushIntervalMillis: batcher.integer("batch_flush_interval_millis", 0, 3_600_000),
    // The seed's default is u64 max; anything beyond 2^53 means "never" just as well.
    batchFlushItemCountThreshold: batcher.integer("batch_flush_item_count_threshold", 1, Number.MAX_SAFE_INTEGER),
    batchFlushSizeThreshold: batcher.integer("batch_flush_size_threshold", 1, MAX_BYTES),
    maxConcurrentCommits: batcher.integer("max_concurrent_commits", 1, 65_536),
    batchMaxBytes: batcher.integer("batch_max_bytes", 1, MAX_BYTES),
  });
}

function readReader(reader: SectionReader): ReaderSettings {
  return {
    listen: reader.string("listen"),
    metricsListen: reader.string("metrics_listen"),
    engine: defined({
      ...readLimits(reader),
      defaultMaxResults: reader.integer("default_max_results", 1, MAX_BYTES),
      maxPageItems: reader.integer("max_page_items", 1, MAX_BYTES),
      // Below the 64 MiB message limit, with room for each item's framing.
      maxPageBytes: reader.integer("max_page_bytes", 1, 48 * 1024 * 1024),
      listPageSize: reader.integer("list_page_size", 1, 1000),
      maxCompactionRetries: reader.integer("max_compaction_retries", 0, 1000),
    }),
    objectCacheBytes: reader.integer("object_cache_bytes", 0, MAX_BYTES),
    followPollMillis: reader.integer("follow_poll_millis", 1, 3_600_000),
    streamPageSize: reader.integer("stream_page_size", 1, 1_000_000),
    streamBufferBytes: reader.integer("stream_buffer_bytes", 2, MAX_BYTES),
    totalStreamBufferBytes: reader.integer("total_stream_buffer_bytes", 1, MAX_BYTES),
    streamStallMillis: reader.integer("stream_stall_millis", 1, 3_600_000),
    maxStreams: reader.integer("max_streams", 1, 10_000_000),
    maxStreamsPerConnection: reader.integer("max_streams_per_connection", 1, 10_000_000),
    shutdownGraceMillis: reader.integer("shutdown_grace_millis", 0, 3_600_000),
  };
}

function readLog(log: SectionReader): LogSettings {
  return {
    enabled: log.boolean("enabled") ?? false,
    writer: defined({
      logLanes: log.integer("lanes", 1, 64),
      logFlushIntervalMillis: log.integer("flush_interval_millis", 0, 60_000),
      logSegmentMaxBytes: log.integer("segment_max_bytes", 1, MAX_BYTES),
      logQueueMaxBytes: log.integer("queue_max_bytes", 1, MAX_BYTES),
      materializeIntervalMillis: log.integer("materialize_interval_millis", 0, 7 * 24 * 3_600_000),
      logRetentionMillis: log.integer("retention_millis", 0, 30 * 24 * 3_600_000),
      logDeleteDelayMillis: log.integer("delete_delay_millis", 0, 7 * 24 * 3_600_000),
      logCacheBytes: log.integer("cache_bytes", 0, MAX_BYTES),
      logDutyCycleMillis: log.integer("duty_cycle_millis", 0, 3_600_000),
    }),
    slotRecordCacheMillis: log.integer("slot_record_cache_millis", 0, 3_600_000),
  };
}

function readServer(server: SectionReader): ServerSettings {
  const settings: ServerSettings = {
    maxMessageBytes: server.integer("max_message_bytes", 1024, 2 ** 31 - 1),
    keepaliveTimeMillis: server.integer("keepalive_time_millis", 1, MAX_BYTES),
    keepaliveTimeoutMillis: server.integer("keepalive_timeout_millis", 1, MAX_BYTES),
    tlsCertFile: server.string("tls_cert_file"),
    tlsKeyFile: server.string("tls_key_file"),
    tlsClientCaFile: server.string("tls_client_ca_file"),
    tlsPeerCaFile: server.string("tls_peer_ca_file"),
    logLevel: server.oneOf("log_level", ["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
  };
  if ((settings.tlsCertFile === undefined) !== (settings.tlsKeyFile === undefined)) {
    throw new ConfigError("[server] tls_cert_file and tls_key_file go together");
  }
  if (settings.tlsClientCaFile !== undefined && settings.tlsCertFile === undefined) {
    throw new ConfigError("[server] tls_client_ca_file (mutual TLS) needs tls_cert_file and tls_key_file");
  }
  return settings;
}

export function parseKlstoreConfig(
  raw: RawConfig,
  env: NodeJS.ProcessEnv = process.env,
  extraSections: readonly string[] = [],
): KlstoreConfig {
  const extra: RawConfig = new Map();
  for (const [name, entries] of raw) {
    if (extraSections.includes(name)) extra.set(name, entries);
    else if (!(KLSTORE_SECTIONS as readonly string[]).includes(name)) {
      const origin = [...entries.values()][0]?.origin ?? `[${name}]`;
      throw new ConfigError(
        `${origin}: unknown section (known: ${[...KLSTORE_SECTIONS, ...extraSections].map((s) => `[${s}]`).join(" ")})`,
      );
    }
  }
  const section = (name: string) => new SectionReader(name, raw.get(name));
  const sections = {
    store: section("store"),
    s3: section("s3"),
    writer: section("writer"),
    batcher: section("batcher"),
    reader: section("reader"),
    server: section("server"),
    log: section("log"),
  };
  const config: KlstoreConfig = {
    store: readStore(sections.store, sections.s3),
    log: readLog(sections.log),
    writer: readWriter(sections.writer, sections.s3, env),
    batching: readBatcher(sections.batcher),
    reader: readReader(sections.reader),
    server: readServer(sections.server),
    extra,
    ignoredEnvironment: Object.values(sections).flatMap((reader) => reader.rejectUnknown()),
  };
  if (config.writer.forwardingPeerNames !== undefined && config.server.tlsClientCaFile === undefined) {
    throw new ConfigError(
      "[writer] forwarding_peer_names needs mutual TLS ([server] tls_client_ca_file): without it no peer certificate is verified",
    );
  }
  return config;
}

/** File, then environment, then overrides; validated as a whole. */
export function loadKlstoreConfig(inputs: ConfigInputs = {}): KlstoreConfig {
  const env = inputs.env ?? process.env;
  const sections = [...KLSTORE_SECTIONS, ...(inputs.extraSections ?? [])];
  const raw = mergeConfig(
    inputs.file !== undefined ? readConfigFile(inputs.file) : new Map(),
    configFromEnv(env, sections),
    configFromOverrides(inputs.overrides ?? []),
  );
  return parseKlstoreConfig(raw, env, inputs.extraSections);
}
