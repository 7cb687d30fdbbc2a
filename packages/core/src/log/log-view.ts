// The log tail shown to readers as the per-key objects it becomes (docs/log.md, "Reading"):
// a view of the store in which a LIST of a key's folder that reaches its end also shows the
// key's log entries, named as the data objects they hold (an entry's name fields are a data
// object name's, its records a data object's body), and a GET of such a name reads the
// entry's bytes from its segment. So paging, seeks and key metadata read per-key objects and
// entries alike, and an entry materialized meanwhile is resolved as an overlap, as objects
// of an interrupted compaction are. Read-only: readers never write.

import { KeyspaceLayout } from "../format/layout.ts";
import { LogLayout } from "../format/log-layout.ts";
import { checkEntryBody } from "../format/log-segment.ts";
import { decodeSegment } from "../format/segments.ts";
import {
  type ListedObject,
  type ListOptions,
  type ListPage,
  type ObjectStore,
  readRange,
  type StoredObject,
} from "../storage/object-store.ts";
import type { LogTail } from "./log-tail.ts";
import type { SlotEntry } from "./takeover.ts";

/**
 * A view of `store` for one read: each key's entries are looked up once (its first LIST) and
 * kept for the view's life, so the log is listed once per read, not once per LIST.
 */
export function withLogTail(store: ObjectStore, prefix: string, tail: LogTail): ObjectStore {
  const keys = new Map<string, Promise<Map<string, SlotEntry>>>();
  /** The same maps, once looked up (so a gone entry can be taken out of them). */
  const keyEntries = new Set<Map<string, SlotEntry>>();
  const virtual = new Map<string, SlotEntry>();

  /** The key a LIST prefix lists (its folder, or its data objects), if it is one. */
  const keyOf = (listPrefix: string) => {
    if (!listPrefix.startsWith(prefix)) return undefined;
    const [ks, key, rest, ...more] = listPrefix.slice(prefix.length).split("/");
    if (ks === undefined || key === undefined || more.length > 0 || (rest !== "" && rest !== "data_")) return undefined;
    const keyspace = decodeSegment("keyspace", ks);
    const name = decodeSegment("key", key);
    return keyspace !== undefined && name !== undefined ? { keyspace, key: name } : undefined;
  };

  const entriesOf = (keyspace: string, key: string) => {
    const layout = new KeyspaceLayout(prefix, keyspace).key(key);
    let found = keys.get(layout.folder);
    if (!found) {
      found = tail.entriesOf(keyspace, key).then((entries) => {
        const byName = new Map<string, SlotEntry>();
        for (const e of entries) {
          const name = layout.dataKey({ ...e.entry.name, compression: "none" });
          byName.set(name, e);
          virtual.set(name, e);
        }
        keyEntries.add(byName);
        return byName;
      });
      keys.set(layout.folder, found);
    }
    return found;
  };

  return {
    description: store.description,
    async list(listPrefix: string, options?: ListOptions): Promise<ListPage> {
      const key = keyOf(listPrefix);
      // The log first: an entry it no longer shows (materialization progress) is in a
      // per-key object written before that progress, which this LIST then shows.
      const entries = key && (await entriesOf(key.keyspace, key.key));
      const page = await store.list(listPrefix, options);
      // A page cut short ends before the key's newest objects: its entries come later.
      if (!entries || page.truncated) return page;
      const after = options?.startAfter ?? "";
      const listed = new Set(page.objects.map((o) => o.key));
      const extra: ListedObject[] = [];
      for (const [name, e] of entries) {
        if (name > after && name.startsWith(listPrefix) && !listed.has(name)) {
          extra.push({ key: name, size: e.entry.bodyBytes });
        }
      }
      if (extra.length === 0) return page;
      const objects = [...page.objects, ...extra].sort((a, b) =>
        Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)),
      );
      const max = options?.maxKeys ?? objects.length;
      return { objects: objects.slice(0, max), truncated: objects.length > max };
    },
    async get(key: string): Promise<StoredObject | undefined> {
      const e = virtual.get(key);
      if (!e) return store.get(key);
      const segment = new LogLayout(prefix, e.log).segmentKey(e.seq);
      const start = e.bodyStart + e.entry.bodyOffset;
      const read = await readRange(store, segment, start, start + e.entry.bodyBytes);
      if (!read) {
        // Deleted since: materialized, so the key's folder holds it now. The read looks its
        // position up again, and must not meet this entry there again: segments never return.
        virtual.delete(key);
        for (const byName of keyEntries.values()) byName.delete(key);
        tail.forgetSegment(e.log, e.seq);
        return undefined;
      }
      return { body: checkEntryBody(segment, e.entry, read.body) };
    },
    ...(store.getRange && { getRange: store.getRange.bind(store) }),
    listFolders: (p) => store.listFolders(p),
    async put() {
      throw new Error("a reader's view of the log does not write");
    },
    async delete() {
      throw new Error("a reader's view of the log does not delete");
    },
    close: () => store.close(),
  };
}
