// Remote mode: the commands go through running services, appends to the writer shards
// (`--writer`: one address, which forwards to the owner, or the whole "name=host:port,..."
// list, which lets the client route itself; with --discover-shards the list is asked of
// the one address) and reads to a reader (`--reader`). A failure names the server that
// answered, and a tail (`read --follow`, `watch`) the server went away from.

import { readFileSync } from "node:fs";
import { type ChannelCredentials, credentials, type ServiceError, status } from "@grpc/grpc-js";
import { KlstoreClient } from "@klstore/client";
import { Compression, type KeyspaceMetadata } from "@klstore/proto";
import { CommandFailed, UsageError } from "../failures.ts";
import type { Backend, KeyspaceInfo } from "./backend.ts";

/** PEM files of --tls-ca, --tls-cert and --tls-key. */
export interface TlsFiles {
  readonly ca?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
}

export interface RemoteOptions {
  readonly writer?: string | undefined;
  readonly reader?: string | undefined;
  readonly tls?: TlsFiles | undefined;
  readonly deadlineMillis?: number | undefined;
  /** Learn the shard list from the --writer shard (GetShards) before the first write. */
  readonly discoverShards?: boolean | undefined;
}

function tlsCredentials(tls: TlsFiles | undefined): ChannelCredentials | undefined {
  if (!tls?.ca && !tls?.cert) return undefined;
  if ((tls.cert === undefined) !== (tls.key === undefined))
    throw new UsageError("--tls-cert and --tls-key go together");
  const read = (flag: string, path: string | undefined) => {
    if (!path) return null;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new UsageError(`${flag}: cannot read ${path}: ${(err as Error).message}`);
    }
  };
  return credentials.createSsl(read("--tls-ca", tls.ca), read("--tls-key", tls.key), read("--tls-cert", tls.cert));
}

function isServiceError(err: unknown): err is ServiceError {
  return typeof (err as { code?: unknown }).code === "number" && "details" in (err as object);
}

/**
 * A status as one line: its name and details, without the empty "Resolution note: " and the
 * doubled "Error: " that grpc-js puts into a connection failure's details.
 */
export function describeStatus(err: ServiceError): string {
  const details = err.details.replace(/\.? Resolution note: ?$/, "").replace(/Last error: Error: /, "Last error: ");
  return `${status[err.code] ?? err.code}: ${details}`;
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
    throw new UsageError(`this command needs ${flag} in remote mode (or give --store instead)`);
  };
  const settings = {
    // A client needs both ends; a command that uses only one never calls the placeholder.
    reader: options.reader ?? "127.0.0.1:1",
    credentials: tlsCredentials(options.tls),
    deadlineMillis: options.deadlineMillis,
  };
  const client = new KlstoreClient({ ...settings, writers: options.writer ?? "unset=127.0.0.1:1" });
  const needWriter = options.writer ? () => {} : missing("--writer");
  const needReader = options.reader ? () => {} : missing("--reader");
  const reader = `reader ${options.reader}`;
  const writer = `writer ${options.writer}`;
  // Only a write waits for discovery, and only once; reads go through `client`.
  let discovered: Promise<KlstoreClient> | undefined;
  const writing = async (): Promise<KlstoreClient> => {
    needWriter();
    if (!options.discoverShards) return client;
    discovered ??= KlstoreClient.discover({ ...settings, writer: client.ring.shards[0]?.address as string });
    return discovered;
  };
  /** A call's failure, naming the server that answered it (so NOT_FOUND says who looked). */
  const at = async <T>(server: string, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      if (!isServiceError(err)) throw err;
      throw new CommandFailed(`${describeStatus(err)} (${server})`, { cause: err });
    }
  };
  /**
   * A tail that ended: by Ctrl-C (fine), or because the reader went away, which is the
   * command's failure. A reader that stops ends its tails cleanly and one that dies breaks
   * them (the client's retries then fail to reconnect); either way the user is told, with
   * where to resume.
   */
  const tailEnded = (what: string, err: unknown, resume: string | undefined): CommandFailed => {
    const why =
      err === undefined
        ? "ended the stream (it stopped or restarted)"
        : `closed the stream: ${describeStatus(err as ServiceError)}`;
    return new CommandFailed(`${reader} ${why}; ${what} stopped${resume ? `, resume with ${resume}` : ""}`, {
      cause: err,
    });
  };

  return {
    async createKeyspace(keyspace, compression, retention) {
      const created = await at(writer, async () =>
        (await writing()).createKeyspace(keyspace, { compression, retention }),
      );
      return keyspaceInfo(created);
    },
    async setRetention(keyspace, retention) {
      return keyspaceInfo(await at(writer, async () => (await writing()).setRetention(keyspace, retention)));
    },
    async trim(keyspace, key, beforeOffset) {
      return at(writer, async () => (await writing()).trim(keyspace, key, beforeOffset));
    },
    async *watch(keyspace, cursor, signal) {
      needReader();
      let last: string | undefined;
      try {
        for await (const batch of client.watch(keyspace, { cursor, signal })) {
          last = batch.cursor;
          yield batch;
        }
      } catch (err) {
        if (!isServiceError(err)) throw err;
        // Before the first message the reader refused the watch itself (a bad cursor, say).
        if (last === undefined) throw new CommandFailed(`${describeStatus(err)} (${reader})`, { cause: err });
        throw tailEnded("the watch", err, `--cursor ${last}`);
      }
      if (!signal.aborted) throw tailEnded("the watch", undefined, last && `--cursor ${last}`);
    },
    async keyspace(keyspace) {
      needReader();
      return keyspaceInfo(await at(reader, () => client.keyspaceMetadata(keyspace)));
    },
    async append(keyspace, key, insertions) {
      return at(writer, async () => (await writing()).append(keyspace, key, insertions));
    },
    async keyMetadata(keyspace, key) {
      needReader();
      const meta = await at(reader, () => client.keyMetadata(keyspace, key));
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
      let delivered = 0;
      let next: bigint | undefined;
      const resume = () => (next === undefined ? undefined : `--from-offset ${next}`);
      try {
        const items = client.items(keyspace, key, {
          order: options.order,
          startOffset: options.startOffset,
          startTimestamp: options.startTimestamp,
          startNonce: options.startNonce,
          limit: options.limit === undefined ? undefined : BigInt(options.limit),
          pageSize: options.pageSize,
          follow: options.follow,
          signal: options.signal,
        });
        for await (const item of items) {
          delivered++;
          next = item.offset + 1n;
          yield item;
        }
      } catch (err) {
        if (!isServiceError(err)) throw err;
        if (!options.follow || delivered === 0) {
          throw new CommandFailed(`${describeStatus(err)} (${reader})`, { cause: err });
        }
        throw tailEnded("read --follow", err, resume());
      }
      // A follow ends only by Ctrl-C or its --limit; any other end is the reader's doing.
      const limited = options.limit !== undefined && delivered >= options.limit;
      if (options.follow && !options.signal.aborted && !limited) throw tailEnded("read --follow", undefined, resume());
    },
    async keys() {
      throw new UsageError(
        "the reader service has no key listing: name the keys to export, or export with --store (direct mode), which lists them from storage",
      );
    },
    async shards() {
      needWriter();
      return at(writer, () => client.shards());
    },
    explain(err) {
      // What `at` did not see: a failure inside a command's own use of the backend.
      return isServiceError(err) ? new CommandFailed(describeStatus(err), { cause: err }) : err;
    },
    async close() {
      client.close();
      (await discovered?.catch(() => undefined))?.close();
    },
  };
}
