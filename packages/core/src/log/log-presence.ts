// Whether a store is written through the shared log (docs/log.md, "Older buckets"). A
// per-key writer (StoreWriter, BatchingStoreWriter) does not see the logs' entries, so on
// such a store it would commit offsets the logs already hold, and a reader without log tails
// misses what is not materialized yet: the processes that would do either ask first and
// refuse. A log never empties (its newest segment and fences are kept), so one LIST of one
// object answers for the store's whole life.

import { WrittenThroughLog } from "../errors.ts";
import { logsFolder } from "../format/log-layout.ts";
import type { ObjectStore } from "../storage/object-store.ts";

export async function storeHasLogs(store: ObjectStore, prefix: string): Promise<boolean> {
  return (await store.list(logsFolder(prefix), { maxKeys: 1 })).objects.length > 0;
}

/** Throws WrittenThroughLog, saying what to do `instead`, if the store has logs. */
export async function refuseIfWrittenThroughLog(store: ObjectStore, prefix: string, instead: string): Promise<void> {
  if (await storeHasLogs(store, prefix)) throw new WrittenThroughLog(store.description, instead);
}
