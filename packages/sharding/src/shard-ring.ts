// Which writer shard owns a (keyspace, key). Rendezvous (highest-random-weight) hashing:
// every shard scores the key and the highest score owns it. Any language can reproduce it
// with SHA-256 alone (docs/sharding.md), and when a shard joins or leaves only the keys it
// gains or loses move, about 1/N of them.

import { createHash } from "node:crypto";

export interface Shard {
  /** Stable identity used for hashing (e.g. the StatefulSet pod name); not the address. */
  readonly name: string;
  /** host:port to reach it. */
  readonly address: string;
}

function field(hash: ReturnType<typeof createHash>, text: string): void {
  const bytes = Buffer.from(text, "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  hash.update(length).update(bytes);
}

/**
 * score = the first 8 bytes, big-endian, of
 * SHA-256(u32be(len(shard)) || shard || u32be(len(keyspace)) || keyspace || u32be(len(key)) || key)
 * with every string as UTF-8. Length prefixes keep ("a/b","c") and ("a","b/c") apart.
 */
export function shardScore(shardName: string, keyspace: string, key: string): bigint {
  const hash = createHash("sha256");
  field(hash, shardName);
  field(hash, keyspace);
  field(hash, key);
  return hash.digest().readBigUInt64BE(0);
}

/**
 * Byte order of the UTF-8 forms, as Go, Rust and C compare strings. JavaScript's `<` (and
 * Java's compareTo) compares UTF-16 code units, which orders U+E000..U+FFFF after the
 * characters above U+FFFF: the other way round.
 */
function utf8Before(a: string, b: string): boolean {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")) < 0;
}

export class ShardRing {
  readonly shards: readonly Shard[];

  constructor(shards: readonly Shard[]) {
    if (shards.length === 0) throw new Error("a shard ring needs at least one shard");
    const names = new Set(shards.map((s) => s.name));
    if (names.size !== shards.length) throw new Error("shard names must be unique");
    this.shards = [...shards];
  }

  /**
   * The owner: highest score; a tie (about one key in 2^64 per pair of shards) goes to the
   * name whose UTF-8 bytes sort first.
   */
  ownerOf(keyspace: string, key: string): Shard {
    let best: Shard | undefined;
    let bestScore = -1n;
    for (const shard of this.shards) {
      const score = shardScore(shard.name, keyspace, key);
      if (score > bestScore || (score === bestScore && best !== undefined && utf8Before(shard.name, best.name))) {
        best = shard;
        bestScore = score;
      }
    }
    return best as Shard;
  }

  byName(name: string): Shard | undefined {
    return this.shards.find((s) => s.name === name);
  }
}

/**
 * Parses a shard list: comma-separated `name=host:port`, or bare `host:port` (then the
 * address is also the name).
 */
export function parseShardList(list: string): Shard[] {
  return list
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((entry) => {
      const eq = entry.indexOf("=");
      return eq < 0 ? { name: entry, address: entry } : { name: entry.slice(0, eq), address: entry.slice(eq + 1) };
    });
}
