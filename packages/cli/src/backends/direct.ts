// Direct mode: the commands work on a store URL through the core engines, no service
// needed. Appends go through a StoreWriter with fencing, so running this beside live
// writer shards is safe (one of the two is fenced and the command fails cleanly), unless
// the shards use the shared log (docs/log.md): their key states do not see per-key
// commits, so direct appends and trims are refused on such a store. Reads see the logs.

import { setTimeout as sleep } from "node:timers/promises";
import {
  changesFolder,
  encodeWatchCursor,
  InvalidArgument,
  type Item,
  KeyspaceNotFound,
  LogTail,
  listKeys,
  openStore,
  pollChanges,
  RecentObject,
  RepeatedChangeFilter,
  refuseIfWrittenThroughLog,
  StoreReader,
  StoreWriter,
  startingCursor,
} from "@klstore/core";
import { CommandFailed, UsageError } from "../failures.ts";
import type { Backend, ReadItemsOptions, WatchBatch } from "./backend.ts";

/** How often `read --follow` looks for new items in direct mode. */
const FOLLOW_POLL_MILLIS = 250;

/** The store a --store URL names; a URL it cannot open is a usage error. */
function openStoreOption(url: string): ReturnType<typeof openStore> {
  try {
    return openStore(url);
  } catch (err) {
    if (err instanceof InvalidArgument) throw new UsageError(err.message);
    throw err;
  }
}

/** A missing keyspace, named with the store it is missing from (a newcomer's first error). */
export function explainInStore(err: unknown, storeDescription: string): unknown {
  if (!(err instanceof KeyspaceNotFound)) return err;
  return new CommandFailed(
    `${err.message} in ${storeDescription} (create it with: klstore keyspace create ${err.keyspace}, or give --store)`,
    { cause: err },
  );
}

const PER_KEY_REFUSAL = "append and trim through the writer service (--writer HOST:PORT), not directly";

export function directBackend(url: string): Backend {
  const { store, prefix } = openStoreOption(url);
  // On a store without logs the log tail finds no slot record: one LIST more per read.
  const reader = new StoreReader({ store, prefix, logTail: new LogTail(store, prefix) });
  let writer: StoreWriter | undefined;
  const writerOf = () => {
    writer ??= new StoreWriter({ store, prefix });
    return writer;
  };
  const perKeyWriter = async () => {
    await refuseIfWrittenThroughLog(store, prefix, PER_KEY_REFUSAL);
    return writerOf();
  };

  async function* items(keyspace: string, key: string, options: ReadItemsOptions): AsyncGenerator<Item> {
    let remaining = options.limit ?? Number.POSITIVE_INFINITY;
    let continuation: string | undefined;
    let lastOffset: bigint | undefined;
    const recent = new RecentObject(); // consecutive pages fetch each object once
    const filter = {
      startOffset: options.startOffset,
      startTimestamp: options.startTimestamp,
      startNonce: options.startNonce,
    };
    while (remaining > 0 && !options.signal.aborted) {
      const page = await reader.readPage(keyspace, key, {
        order: options.order,
        maxSize: Math.min(remaining, options.pageSize ?? reader.config.defaultMaxResults),
        filter: continuation ? undefined : filter,
        continuation,
        recent,
      });
      for (const item of page.items) {
        yield item;
        lastOffset = item.offset;
      }
      remaining -= page.items.length;
      if (page.continuation) {
        continuation = page.continuation;
        continue;
      }
      if (!options.follow) return;
      // At the end: resume right after the last item seen (or from the start if none yet).
      continuation =
        lastOffset === undefined ? undefined : reader.continuationAfter(keyspace, key, options.order, lastOffset);
      await sleep(FOLLOW_POLL_MILLIS, undefined, { signal: options.signal }).catch(() => {});
    }
  }

  /** Polls the change log itself (no reader service): the same cursors as WatchKeyspace. */
  async function* watch(keyspace: string, from: string | undefined, signal: AbortSignal): AsyncGenerator<WatchBatch> {
    await reader.readKeyspaceMetadata(keyspace);
    const folder = changesFolder(prefix, keyspace);
    let cursor = startingCursor(folder, from, BigInt(Date.now()));
    yield { changes: [], cursor: encodeWatchCursor(folder, cursor) }; // as WatchKeyspace's first message
    const repeats = new RepeatedChangeFilter();
    while (!signal.aborted) {
      const step = await pollChanges(store, prefix, keyspace, cursor, BigInt(Date.now()));
      cursor = step.next;
      const changes = repeats.admit(step.changes);
      if (changes.length > 0) yield { changes, cursor: encodeWatchCursor(folder, cursor) };
      await sleep(FOLLOW_POLL_MILLIS, undefined, { signal }).catch(() => {});
    }
  }

  return {
    async createKeyspace(keyspace, compression, retention) {
      const settings = await writerOf().createKeyspace(keyspace, { compression, retention });
      return { keyspace, ...settings };
    },
    async keyspace(keyspace) {
      return reader.readKeyspaceMetadata(keyspace);
    },
    async setRetention(keyspace, retention) {
      return { keyspace, ...(await writerOf().setRetention(keyspace, retention)) };
    },
    async trim(keyspace, key, beforeOffset) {
      return (await (await perKeyWriter()).trim(keyspace, key, beforeOffset)).firstOffset;
    },
    watch,
    append: async (keyspace, key, insertions) => (await perKeyWriter()).appendList(keyspace, key, insertions),
    keyMetadata: (keyspace, key) => reader.readKeyMetadata(keyspace, key),
    items,
    keys: (keyspace) => listKeys(store, prefix, keyspace),
    async shards() {
      throw new UsageError("the shard list comes from a running writer shard: give --writer HOST:PORT");
    },
    explain: (err) => explainInStore(err, store.description),
    async close() {
      await writer?.close();
      await store.close();
    },
  };
}
