// Keys hash into a fixed number of slots (docs/log.md, "Slots and routing"), like Kafka's
// partitions or Redis Cluster's hash slots: writer shards own slots, and the shared log
// fences, records and materializes per slot. A constant of the storage format, not a
// setting: segments and slot records name slots by number.

import { createHash } from "node:crypto";

export const SLOT_COUNT = 1024;

function field(hash: ReturnType<typeof createHash>, text: string): void {
  const bytes = Buffer.from(text, "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  hash.update(length).update(bytes);
}

/**
 * slot = the first 8 bytes, big-endian, of
 * SHA-256(u32be(len(keyspace)) || keyspace || u32be(len(key)) || key), modulo SLOT_COUNT,
 * every string as UTF-8.
 */
export function slotOf(keyspace: string, key: string): number {
  const hash = createHash("sha256");
  field(hash, keyspace);
  field(hash, key);
  return Number(hash.digest().readBigUInt64BE(0) % BigInt(SLOT_COUNT));
}
