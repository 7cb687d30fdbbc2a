// The keys of a keyspace, from the folder names under it (one folder per key). Folders
// that do not decode as a key segment (".imports", anything not written by klstore) are
// not keys and are left out.

import { KeyspaceNotFound } from "../errors.ts";
import { KeyspaceLayout } from "../format/layout.ts";
import { decodeSegment } from "../format/segments.ts";
import type { ObjectStore } from "../storage/object-store.ts";

/**
 * Every key that has a folder, in byte order of the UTF-8 names. A key whose folder holds
 * no items (say, only a sealed batch) is listed too; reading it gives nothing.
 */
export async function listKeys(store: ObjectStore, prefix: string, keyspace: string): Promise<string[]> {
  const layout = new KeyspaceLayout(prefix, keyspace);
  if (!(await store.get(layout.configKey))) throw new KeyspaceNotFound(keyspace);
  const keys: { key: string; bytes: Buffer }[] = [];
  for (const folder of await store.listFolders(layout.keysFolder)) {
    const key = decodeSegment("key", folder);
    if (key !== undefined) keys.push({ key, bytes: Buffer.from(key, "utf8") });
  }
  // Folder names sort by their escaped form, which is not the order of the names themselves.
  return keys.sort((a, b) => Buffer.compare(a.bytes, b.bytes)).map((k) => k.key);
}
