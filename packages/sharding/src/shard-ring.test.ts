import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseShardList, ShardRing, shardScore } from "./shard-ring.ts";

const shards = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `writer-${i}`, address: `h:${i}` }));

describe("shard ring", () => {
  it("scores with the documented SHA-256 construction (a vector for other languages)", () => {
    // sha256(00000008 "writer-0" 00000002 "ks" 00000001 "k"), first 8 bytes big-endian;
    // computed independently with Python hashlib.
    assert.equal(shardScore("writer-0", "ks", "k").toString(16), "ddb82072ed1d0152");
    assert.notEqual(shardScore("w", "a/b", "c"), shardScore("w", "a", "b/c"));
  });

  it("spreads keys evenly and moves only about 1/N of them when a shard joins", () => {
    const three = new ShardRing(shards(3));
    const four = new ShardRing(shards(4));
    const counts = new Map<string, number>();
    let moved = 0;
    const keys = 6000;
    for (let i = 0; i < keys; i++) {
      const a = three.ownerOf("ks", `key-${i}`).name;
      const b = four.ownerOf("ks", `key-${i}`).name;
      counts.set(a, (counts.get(a) ?? 0) + 1);
      if (a !== b) {
        moved++;
        assert.equal(b, "writer-3", "a key only ever moves to the new shard");
      }
    }
    for (const n of counts.values())
      assert.ok(Math.abs(n - keys / 3) < keys * 0.05, `balanced: ${[...counts.values()]}`);
    assert.ok(Math.abs(moved - keys / 4) < keys * 0.05, `moved ${moved} of ${keys}`);
  });

  it("parses shard lists with and without names", () => {
    assert.deepEqual(parseShardList("a=127.0.0.1:1, 127.0.0.1:2"), [
      { name: "a", address: "127.0.0.1:1" },
      { name: "127.0.0.1:2", address: "127.0.0.1:2" },
    ]);
    assert.throws(() => new ShardRing([]));
    assert.throws(() => new ShardRing([...shards(1), ...shards(1)]));
  });
});
