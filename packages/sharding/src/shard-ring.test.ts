import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { highestScore, parseShardList, ShardRing, SLOT_COUNT, slotOf, slotScore } from "./shard-ring.ts";

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
  it("hashes keys into slots and scores slots with the documented SHA-256 constructions (vectors for other languages)", () => {
    // sha256(00000002 "ks" 00000001 "k") mod 1024, and sha256(00000008 "writer-0" 00000000),
    // first 8 bytes big-endian; computed independently with Python hashlib.
    assert.equal(slotOf("ks", "k"), 522);
    assert.equal(slotScore("writer-0", 0).toString(16), "38338fca9cd9b2c4");
    assert.ok(SHARDING_DOC.includes('`slot("ks", "k") = 522`, `score("writer-0", 0) = 0x38338fca9cd9b2c4`'));
    assert.notEqual(slotOf("a/b", "c"), slotOf("a", "b/c"));
  });

  it("gives docs/sharding.md's multi-shard vector: every slot, score and owner", () => {
    const { header, rows } = documentedTable("keyspace");
    const names = header.slice(3, -1);
    assert.equal(names.length, 4);
    const ring = new ShardRing(names.map((name) => ({ name, address: name })));
    const owners = new Set<string>();
    assert.ok(rows.length >= 8, `${rows.length} keys`);
    for (const [keyspace, key, slot, ...rest] of rows as [string, string, string, ...string[]][]) {
      assert.equal(slotOf(keyspace, key), Number(slot), `slot of ${keyspace}/${key}`);
      const scores = names.map((name) => slotScore(name, Number(slot)).toString(16).padStart(16, "0"));
      assert.deepEqual(scores, rest.slice(0, -1), `scores of ${keyspace}/${key}`);
      assert.equal(ring.ownerOf(keyspace, key).name, rest.at(-1), `owner of ${keyspace}/${key}`);
      owners.add(rest.at(-1) as string);
    }
    assert.equal(owners.size, names.length, "the vector gives every shard a key");
  });

  it("breaks a tie by the names' UTF-8 bytes, not their UTF-16 units (docs/sharding.md)", () => {
    // A unit test of the rule alone: two equal scores, names whose two orders differ.
    const upper = { name: "tie-\u{10000}d7a701a65665bdef", address: "h:1" };
    const lower = { name: "tie-\uff610682ad0d38118070", address: "h:2" };
    assert.ok(upper.name < lower.name, "JavaScript's < puts the other name first");
    assert.ok(Buffer.compare(Buffer.from(lower.name), Buffer.from(upper.name)) < 0, "its UTF-8 bytes sort first");
    for (const order of [
      [upper, lower],
      [lower, upper],
    ]) {
      assert.equal(
        highestScore(order, () => 7n),
        lower,
        "whatever the list's order",
      );
      assert.equal(
        highestScore(order, (s) => (s === upper ? 8n : 7n)),
        upper,
        "a higher score wins before names are compared",
      );
    }
  });

  it("spreads slots evenly and moves only about 1/N of them, each to the new shard, when a shard joins", () => {
    const three = new ShardRing(shards(3));
    const four = new ShardRing(shards(4));
    let moved = 0;
    const perShard = new Map<string, number>();
    for (let slot = 0; slot < SLOT_COUNT; slot++) {
      const a = three.ownerOfSlot(slot).name;
      const b = four.ownerOfSlot(slot).name;
      perShard.set(a, (perShard.get(a) ?? 0) + 1);
      if (a !== b) {
        moved++;
        assert.equal(b, "writer-3", "a slot only ever moves to the new shard");
      }
    }
    for (const n of perShard.values())
      assert.ok(Math.abs(n - SLOT_COUNT / 3) < SLOT_COUNT * 0.06, `balanced: ${[...perShard.values()]}`);
    assert.ok(Math.abs(moved - SLOT_COUNT / 4) < SLOT_COUNT * 0.06, `moved ${moved} of ${SLOT_COUNT}`);
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
