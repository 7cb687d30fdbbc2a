// Which writer shard owns a (keyspace, key): the owner of the key's slot (slots.ts), by
// rendezvous (highest-random-weight) hashing: every shard scores the slot and the highest
// score owns it. Any language can reproduce it with SHA-256 alone (docs/sharding.md), and
// when a shard joins or leaves only the slots it gains or loses move, about 1/N of them.

import { createHash } from "node:crypto";
import { SLOT_COUNT, slotOf } from "./slots.ts";

export { SLOT_COUNT, slotOf };

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
 * score = the first 8 bytes, big-endian, of SHA-256(u32be(len(shard)) || shard || u32be(slot)),
 * the shard's name as UTF-8 (docs/sharding.md).
 */
export function slotScore(shardName: string, slot: number): bigint {
  const hash = createHash("sha256");
  field(hash, shardName);
  const slotBytes = Buffer.alloc(4);
  slotBytes.writeUInt32BE(slot);
  hash.update(slotBytes);
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

/** The shard with the highest score; a tie goes to the name whose UTF-8 bytes sort first. */
export function highestScore(shards: readonly Shard[], score: (shard: Shard) => bigint): Shard {
  let best: Shard | undefined;
  let bestScore = -1n;
  for (const shard of shards) {
    const s = score(shard);
    if (s > bestScore || (s === bestScore && best !== undefined && utf8Before(shard.name, best.name))) {
      best = shard;
      bestScore = s;
    }
  }
  return best as Shard;
}

export class ShardRing {
  readonly shards: readonly Shard[];
  /** Each slot's owner, worked out once: a key costs one hash (its slot), not one per shard. */
  private readonly owners: Shard[];

  constructor(shards: readonly Shard[]) {
    if (shards.length === 0) throw new Error("a shard ring needs at least one shard");
    const names = new Set(shards.map((s) => s.name));
    if (names.size !== shards.length) throw new Error("shard names must be unique");
    this.shards = [...shards];
    this.owners = Array.from({ length: SLOT_COUNT }, (_, slot) => this.scoreOwner(slot));
  }

  /** The owner of a key: the owner of its slot (slots.ts). */
  ownerOf(keyspace: string, key: string): Shard {
    return this.ownerOfSlot(slotOf(keyspace, key));
  }

  ownerOfSlot(slot: number): Shard {
    const owner = this.owners[slot];
    if (!owner) throw new RangeError(`slot ${slot} is outside 0..${SLOT_COUNT - 1}`);
    return owner;
  }

  /**
   * The slot's owner: highest score; a tie (about one slot in 2^64 per pair of shards) goes
   * to the name whose UTF-8 bytes sort first.
   */
  private scoreOwner(slot: number): Shard {
    return highestScore(this.shards, (shard) => slotScore(shard.name, slot));
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
