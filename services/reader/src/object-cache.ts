// A bounded cache of data object bodies in front of the store. Data objects are immutable:
// a name is written once and its bytes never change (compaction writes new names), so a
// cached body never goes stale. Bodies whose length differs from the size in their name
// are not cached, so a damaged object that is later restored is read afresh.

import { type ObjectStore, parseDataObjectName, type StoredObject } from "@klstore/core";
import { LRUCache } from "lru-cache";

/** The size a data object's name promises; undefined for any other object. */
function promisedSize(key: string): bigint | undefined {
  return parseDataObjectName(key.slice(key.lastIndexOf("/") + 1))?.sizeBytes;
}

export class ObjectCacheStats {
  hits = 0;
  misses = 0;
  /** Body bytes held right now (never above the cache's bound). */
  bytes = 0;
}

export function cachingStore(store: ObjectStore, maxBytes: number, stats = new ObjectCacheStats()): ObjectStore {
  const cache = new LRUCache<string, StoredObject>({
    maxSize: Math.max(1, maxBytes),
    sizeCalculation: (o) => Math.max(1, o.body.byteLength),
  });
  return {
    ...bind(store),
    async get(key) {
      const hit = cache.get(key);
      if (hit) {
        stats.hits++;
        return hit;
      }
      stats.misses++;
      const obj = await store.get(key);
      if (obj && promisedSize(key) === BigInt(obj.body.byteLength) && obj.body.byteLength <= maxBytes) {
        cache.set(key, obj);
        stats.bytes = cache.calculatedSize;
      }
      return obj;
    },
  };
}

function bind(store: ObjectStore): ObjectStore {
  return {
    description: store.description,
    get: (key) => store.get(key),
    put: (key, body, options) => store.put(key, body, options),
    delete: (keys) => store.delete(keys),
    list: (prefix, options) => store.list(prefix, options),
    listFolders: (prefix) => store.listFolders(prefix),
    close: () => store.close(),
  };
}
