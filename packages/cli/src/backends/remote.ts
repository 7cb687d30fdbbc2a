// Remote mode: the commands go through running services, appends to the writer shards
// (`--writer`: one address, which forwards to the owner, or the whole "name=host:port,..."
// list, which lets the client route itself) and reads to a reader (`--reader`).

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
  const client = new KlstoreClient({
    // A client needs both ends; a command that uses only one never calls the placeholder.
    writers: options.writer ?? "unset=127.0.0.1:1",
    reader: options.reader ?? "127.0.0.1:1",
    credentials: options.credentials,
    deadlineMillis: options.deadlineMillis,
  });
  const needWriter = options.writer ? () => {} : missing("--writer");
  const needReader = options.reader ? () => {} : missing("--reader");

  return {
    async createKeyspace(keyspace, compression, retention) {
      needWriter();
      return keyspaceInfo(await client.createKeyspace(keyspace, { compression, retention }));
    },
    async setRetention(keyspace, retention) {
      needWriter();
      return keyspaceInfo(await client.setRetention(keyspace, retention));
    },
    async trim(keyspace, key, beforeOffset) {
      needWriter();
      return client.trim(keyspace, key, beforeOffset);
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
      needWriter();
      return client.append(keyspace, key, insertions);
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
    async close() {
      client.close();
    },
  };
}
