// Remote mode: the commands go through running services, appends to the writer shards
// (`--writer`: one address, which forwards to the owner, or the whole "name=host:port,..."
// list, which lets the client route itself; with --discover-shards the list is asked of
// the one address) and reads to a reader (`--reader`).

import type { ChannelCredentials } from "@grpc/grpc-js";
import { KlstoreClient } from "@klstore/client";
import { InvalidArgument } from "@klstore/core";
import { Compression, type KeyspaceMetadata } from "@klstore/proto";
import type { Backend, KeyspaceInfo } from "./backend.ts";

export interface RemoteOptions {
  readonly writer?: string | undefined;
  readonly reader?: string | undefined;
  readonly credentials?: ChannelCredentials | undefined;
  readonly deadlineMillis?: number | undefined;
  /** Learn the shard list from the --writer shard (GetShards) before the first write. */
  readonly discoverShards?: boolean | undefined;
}

function keyspaceInfo(message: KeyspaceMetadata | undefined): KeyspaceInfo {
  if (!message) throw new Error("the service answered without keyspace metadata");
  return {
    keyspace: message.keyspace,
    createdMillis: message.createdMillis,
    compression: message.compression === Compression.ZSTD ? "zstd" : "none",
    retention: message.retention
      ? { maxAgeMillis: message.retention.maxAgeMillis, maxItems: message.retention.maxItems }
      : undefined,
  };
}

export function remoteBackend(options: RemoteOptions): Backend {
  const missing = (flag: string) => () => {
    throw new InvalidArgument(flag, "this command needs it in remote mode (or give --store instead)");
  };
  const settings = {
    // A client needs both ends; a command that uses only one never calls the placeholder.
    reader: options.reader ?? "127.0.0.1:1",
    credentials: options.credentials,
    deadlineMillis: options.deadlineMillis,
  };
  const client = new KlstoreClient({ ...settings, writers: options.writer ?? "unset=127.0.0.1:1" });
  const needWriter = options.writer ? () => {} : missing("--writer");
  const needReader = options.reader ? () => {} : missing("--reader");
  // Only a write waits for discovery, and only once; reads go through `client`.
  let discovered: Promise<KlstoreClient> | undefined;
  const writing = async (): Promise<KlstoreClient> => {
    needWriter();
    if (!options.discoverShards) return client;
    discovered ??= KlstoreClient.discover({ ...settings, writer: client.ring.shards[0]?.address as string });
    return discovered;
  };

  return {
    async createKeyspace(keyspace, compression, retention) {
      return keyspaceInfo(await (await writing()).createKeyspace(keyspace, { compression, retention }));
    },
    async setRetention(keyspace, retention) {
      return keyspaceInfo(await (await writing()).setRetention(keyspace, retention));
    },
    async trim(keyspace, key, beforeOffset) {
      return (await writing()).trim(keyspace, key, beforeOffset);
    },
    async *watch(keyspace, cursor, signal) {
      needReader();
      yield* client.watch(keyspace, { cursor, signal });
    },
    async keyspace(keyspace) {
      needReader();
      return keyspaceInfo(await client.keyspaceMetadata(keyspace));
    },
    async append(keyspace, key, insertions) {
      return (await writing()).append(keyspace, key, insertions);
    },
    async keyMetadata(keyspace, key) {
      needReader();
      const meta = await client.keyMetadata(keyspace, key);
      return meta
        ? {
            firstOffset: meta.firstOffset,
            nextOffset: meta.nextOffset,
            nextNonce: meta.nextNonce,
            itemCount: meta.itemCount,
            minTimestamp: meta.minTimestampMillis,
            maxTimestamp: meta.maxTimestampMillis,
          }
        : undefined;
    },
    async *items(keyspace, key, options) {
      needReader();
      yield* client.items(keyspace, key, {
        order: options.order,
        startOffset: options.startOffset,
        startTimestamp: options.startTimestamp,
        startNonce: options.startNonce,
        limit: options.limit === undefined ? undefined : BigInt(options.limit),
        pageSize: options.pageSize,
        follow: options.follow,
        signal: options.signal,
      });
    },
    async keys() {
      throw new InvalidArgument(
        "KEY",
        "the reader service has no key listing: name the keys to export, or export with --store (direct mode), which lists them from storage",
      );
    },
    async shards() {
      needWriter();
      return client.shards();
    },
    async close() {
      client.close();
      (await discovered?.catch(() => undefined))?.close();
    },
  };
}
