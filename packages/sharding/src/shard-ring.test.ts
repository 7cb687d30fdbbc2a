import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parseShardList, ShardRing, shardScore } from "./shard-ring.ts";

const SHARDING_DOC = readFileSync(new URL("../../../docs/sharding.md", import.meta.url), "utf8");

/** The cells of the doc's table whose header row starts with `| ${first} |`, backticks dropped. */
function documentedTable(first: string): { header: string[]; rows: string[][] } {
  const lines = SHARDING_DOC.split("\n");
  const start = lines.findIndex((l) => new RegExp(`^\\| ${first} +\\|`).test(l));
  assert.ok(start >= 0, `docs/sharding.md has a table starting with ${first}`);
  const cells = (line: string) =>
    line
      .split("|")
      .slice(1, -1)
      .map((c) => c.trim().replace(/^`(.*)`$/, "$1"));
  const rows = [];
  for (let i = start + 2; lines[i]?.startsWith("|"); i++) rows.push(cells(lines[i] as string));
  return { header: cells(lines[start] as string), rows };
}

const shards = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `writer-${i}`, address: `h:${i}` }));

describe("shard ring", () => {
  it("scores with the documented SHA-256 construction (a vector for other languages)", () => {
    // sha256(00000008 "writer-0" 00000002 "ks" 00000001 "k"), first 8 bytes big-endian;
    // computed independently with Python hashlib.
    assert.equal(shardScore("writer-0", "ks", "k").toString(16), "ddb82072ed1d0152");
    assert.ok(SHARDING_DOC.includes('`score("writer-0", "ks", "k") = 0xddb82072ed1d0152`'));
    assert.notEqual(shardScore("w", "a/b", "c"), shardScore("w", "a", "b/c"));
  });

  it("gives docs/sharding.md's multi-shard vector: every score and every owner", () => {
    const { header, rows } = documentedTable("keyspace");
    const names = header.slice(2, -1);
    assert.equal(names.length, 4);
    const ring = new ShardRing(names.map((name) => ({ name, address: name })));
    const owners = new Set<string>();
    assert.ok(rows.length >= 8, `${rows.length} keys`);
    for (const [keyspace, key, ...rest] of rows as [string, string, ...string[]][]) {
      const scores = names.map((name) => shardScore(name, keyspace, key).toString(16).padStart(16, "0"));
      assert.deepEqual(scores, rest.slice(0, -1), `scores of ${keyspace}/${key}`);
      assert.equal(ring.ownerOf(keyspace, key).name, rest.at(-1), `owner of ${keyspace}/${key}`);
      owners.add(rest.at(-1) as string);
    }
    assert.equal(owners.size, names.length, "the vector gives every shard a key");
  });

  it("breaks docs/sharding.md's tie by the names' UTF-8 bytes, not their UTF-16 units", () => {
    const { rows } = documentedTable("shard");
    assert.equal(rows.length, 3);
    for (const [name, utf8, score] of rows as [string, string, string][]) {
      assert.equal(Buffer.from(name, "utf8").toString("hex"), utf8, `${name} is written as documented`);
      assert.equal(shardScore(name, "ks", "tie").toString(16).padStart(16, "0"), score, `score of ${name}`);
    }
    const [upper, lower] = rows.map((r) => r[0] as string);
    assert.ok((upper as string) < (lower as string), "JavaScript's < puts the other name first");
    const owner = /The owner is `([^`]+)`/.exec(SHARDING_DOC)?.[1];
    assert.equal(owner, lower);
    for (const order of [rows, [...rows].reverse()]) {
      const ring = new ShardRing(order.map((r) => ({ name: r[0] as string, address: "h:1" })));
      assert.equal(ring.ownerOf("ks", "tie").name, owner, "whatever the list's order");
    }
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
