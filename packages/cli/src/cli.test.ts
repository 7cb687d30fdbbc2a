// The klstore CLI end to end in direct mode on a temporary folder: appends with
// overlapping nonces, reads both ways with filters and small pages, odd key names, errors.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { changesFolder, encodeWatchCursor, openStore } from "@klstore/core";

const main = new URL("./main.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "klstore-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function klstore(args: string[], input?: string) {
  const res = spawnSync(process.execPath, [main, "--store", `file://${dir}`, ...args], { input, encoding: "utf8" });
  return { code: res.status, out: res.stdout, err: res.stderr };
}

function lines(out: string) {
  return out
    .trim()
    .split("\n")
    .filter((l) => l)
    .map((l) => JSON.parse(l));
}

describe("klstore CLI (direct mode)", () => {
  const key = "odd key/../ü";

  it("creates a keyspace once", () => {
    assert.equal(klstore(["keyspace", "create", "ks"]).code, 0);
    const again = klstore(["keyspace", "create", "ks"]);
    assert.equal(again.code, 1);
    assert.match(again.err, /already exists/);
    assert.equal(lines(klstore(["keyspace", "get", "ks"]).out)[0].keyspace, "ks");
  });

  it("appends from arguments, stdin lines and jsonl, dropping duplicate nonces", () => {
    assert.equal(klstore(["append", "ks", key, "a", "b"]).code, 0);
    assert.equal(klstore(["append", "ks", key], "c\nd\n").code, 0);
    const jsonl = [
      '{"value":"n5","nonce":"5","timestamp":1700000000000}',
      '{"value":"n3","nonce":3}',
      '{"value":"n9","nonce":"9"}',
    ].join("\n");
    const res = klstore(["append", "ks", key, "--format", "jsonl", "--output", "jsonl"], jsonl);
    assert.equal(res.code, 0, res.err);
    assert.deepEqual(
      lines(res.out).map((o) => o.duplicate ?? o.offset),
      [4, true, 5],
    );
    assert.match(klstore(["append", "ks", key, "--nonce", "9", "dup"]).out, /duplicate/);
  });

  it("reads forwards, backwards, from offsets and nonces, in small pages", () => {
    const all = lines(klstore(["read", "ks", key, "--page-size", "2"]).out);
    assert.deepEqual(
      all.map((i) => i.value),
      ["a", "b", "c", "d", "n5", "n9"],
    );
    assert.deepEqual(
      all.map((i) => i.offset),
      [0, 1, 2, 3, 4, 5],
    );
    assert.equal(all[4].nonce, "5");
    const back = lines(klstore(["read", "ks", key, "--reverse", "--page-size", "1", "--limit", "3"]).out);
    assert.deepEqual(
      back.map((i) => i.value),
      ["n9", "n5", "d"],
    );
    assert.deepEqual(
      lines(klstore(["read", "ks", key, "--from-offset", "3"]).out).map((i) => i.value),
      ["d", "n5", "n9"],
    );
    assert.deepEqual(
      lines(klstore(["read", "ks", key, "--from-nonce", "6"]).out).map((i) => i.value),
      ["n9"],
    );
    assert.deepEqual(
      lines(klstore(["read", "ks", key, "--reverse", "--from-nonce", "8"]).out).map((i) => i.value),
      ["n5", "d", "c", "b", "a"],
    );
    const stat = lines(klstore(["stat", "ks", key]).out)[0];
    assert.equal(stat.next_offset, 6);
    assert.equal(stat.next_nonce, "10");
  });

  it("names objects in the seed's layout inside one folder per key", () => {
    const folder = join(dir, "ks", "odd%20key%2F..%2F%C3%BC");
    const names = readdirSync(folder).filter((n) => n.startsWith("data_"));
    assert.ok(names.length > 0);
    for (const n of names) assert.match(n, /^data_o\d{20}-o\d+_t-?\d+-t-?\d+_n\d+-n\d+_s\d+_p\d+\.bin$/);
  });

  it("fails with a one-line message and a non-zero exit on bad input", () => {
    const missing = klstore(["append", "nope", "k", "v"]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /keyspace "nope" does not exist/);
    const badNonce = klstore(["append", "ks", "k", "--nonce", "-1", "v"]);
    assert.notEqual(badNonce.code, 0);
    const badJson = klstore(["append", "ks", "k", "--format", "jsonl"], "{not json}\n");
    assert.equal(badJson.code, 1);
    assert.match(badJson.err, /line 1/);
    const empty = klstore(["append", "ks", "", "v"]);
    assert.equal(empty.code, 1);
    assert.match(empty.err, /invalid key/);
  });

  it("reports a corrupt object as data loss naming it, and prints none of its bytes", () => {
    assert.equal(klstore(["append", "ks", "damaged", "intact-value"]).code, 0);
    const folder = join(dir, "ks", "damaged");
    const name = readdirSync(folder).find((n) => n.startsWith("data_")) as string;
    const path = join(folder, name);
    writeFileSync(path, readFileSync(path).subarray(0, 20)); // truncated, as by a failed copy
    const read = klstore(["read", "ks", "damaged"]);
    assert.equal(read.code, 1);
    assert.equal(read.out, "");
    assert.match(read.err, new RegExp(`corrupt object ks/damaged/${name.replaceAll(".", "\\.")}`));
    assert.equal(read.err.trim().split("\n").length, 1, "one line");
  });

  it("sets retention and trims a key below an offset", () => {
    const created = klstore(["keyspace", "create", "kept", "--max-age", "7d", "--max-items", "100"]);
    assert.equal(created.code, 0, created.err);
    assert.deepEqual(lines(created.out)[0].retention, { max_age_millis: 604_800_000, max_items: 100 });
    const changed = lines(klstore(["keyspace", "set-retention", "kept", "--max-items", "3"]).out)[0];
    assert.deepEqual(changed.retention, { max_items: 3 });
    assert.deepEqual(lines(klstore(["keyspace", "set-retention", "kept"]).out)[0].retention, undefined);
    assert.match(klstore(["keyspace", "create", "bad", "--max-age", "soon"]).err, /--max-age must be a duration/);

    klstore(["append", "kept", "k", "a", "b", "c", "d", "e"]);
    assert.deepEqual(lines(klstore(["trim", "kept", "k", "--before-offset", "3"]).out)[0].first_offset, 3);
    assert.deepEqual(
      lines(klstore(["read", "kept", "k"]).out).map((i) => i.value),
      ["d", "e"],
    );
    assert.equal(lines(klstore(["stat", "kept", "k"]).out)[0].first_offset, 3);
    const beyond = klstore(["trim", "kept", "k", "--before-offset", "9"]);
    assert.notEqual(beyond.code, 0);
    assert.match(beyond.err, /beyond the key's next offset 5/);
  });

  it("watches a keyspace and resumes from a printed cursor", async () => {
    klstore(["keyspace", "create", "watched"]);
    const watchFrom = (cursor?: string) => {
      const args = [main, "--store", `file://${dir}`, "watch", "watched", ...(cursor ? ["--cursor", cursor] : [])];
      const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
      });
      return {
        child,
        changes: () => lines(out),
        async stop() {
          child.kill("SIGINT");
          const [code] = await once(child, "exit");
          return code as number;
        },
      };
    };
    const until = async (ready: () => boolean) => {
      const deadline = Date.now() + 60_000;
      while (!ready()) {
        if (Date.now() > deadline) throw new Error("timed out waiting for watch output");
        await sleep(50);
      }
    };
    const first = watchFrom();
    // A watch reports what is committed after it starts: once it printed a warm-up change
    // made meanwhile, it runs (a fixed wait was too short for a loaded machine).
    const deadline = Date.now() + 60_000;
    for (let n = 1; !first.changes().some((c) => c.key === "warm-up"); n++) {
      if (Date.now() > deadline) throw new Error("timed out waiting for the watch to start");
      klstore(["append", "watched", "warm-up", String(n)]);
      await sleep(200);
    }
    klstore(["append", "watched", "x", "1", "2"]);
    klstore(["append", "watched", "y", "1"]);
    const real = () => first.changes().filter((c) => c.key !== "warm-up");
    await until(() => real().length >= 2);
    assert.equal(await first.stop(), 0, "Ctrl-C ends a watch cleanly");
    const seen = real();
    assert.deepEqual(
      seen.map((c) => `${c.key}:${c.next_offset}`),
      ["x:2", "y:1"],
    );
    klstore(["append", "watched", "x", "3"]); // while nobody watches
    const resumed = watchFrom(seen.at(-1).cursor);
    await until(() => resumed.changes().length >= 1);
    await sleep(500);
    await resumed.stop();
    assert.deepEqual(
      resumed.changes().map((c) => `${c.key}:${c.next_offset}`),
      ["x:3"],
      "the change made while nobody watched, once",
    );
  });

  it("refuses a damaged, edited, oversized or old-form watch cursor with a clear message, no stack", async () => {
    klstore(["keyspace", "create", "cursors"]);
    const { store, prefix } = openStore(`file://${dir}`);
    await store.close();
    const folder = changesFolder(prefix, "cursors");
    const writer = "0123456789abcdef";
    const cursor = encodeWatchCursor(folder, { from: BigInt(Date.now()) - 1000n, seen: new Map([[writer, 3]]) });
    const flip = (bit: number) => {
      const b = Buffer.from(cursor, "base64url");
      b[bit >> 3] = (b[bit >> 3] as number) ^ (1 << (bit & 7));
      return b.toString("base64url");
    };
    const many = encodeWatchCursor(folder, {
      from: BigInt(Date.now()),
      seen: new Map(Array.from({ length: 4096 }, (_, i) => [i.toString(16).padStart(16, "0"), 1])),
    });
    const cases: [string, string, RegExp][] = [
      // One flipped bit in each field: version, from, writer count, writer id, seq, tag, CRC.
      ...[0, 8, 72, 88, 152, 216, 280].map((bit): [string, string, RegExp] => [
        `bit ${bit}`,
        flip(bit),
        /invalid cursor: /,
      ]),
      ["old form", Buffer.from('[1,"tag","1",[]]').toString("base64url"), /earlier klstore version.*watch from now/],
      ["4097 writers", `${many}${"A".repeat(22)}`, /longer than any cursor this service issues/],
      ["not base64url", "c3VyZQ==", /not a cursor this service issued/],
      ["another keyspace's", encodeWatchCursor(changesFolder(prefix, "ks"), { from: 1n, seen: new Map() }), /another/],
    ];
    for (const [what, bad, reason] of cases) {
      const res = klstore(["watch", "cursors", "--cursor", bad]);
      assert.equal(res.code, 1, `${what}: ${res.err}`);
      assert.match(res.err, /^klstore: invalid cursor: /, what);
      assert.match(res.err, reason, what);
      assert.doesNotMatch(res.err, /\n\s+at /, `${what}: no stack trace`);
      assert.equal(res.out, "", `${what}: nothing printed`);
    }
  });
});
