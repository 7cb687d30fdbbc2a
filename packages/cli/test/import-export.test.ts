// `klstore import` and `klstore export` as real processes: jsonl and csv imports read back
// exactly, export -> import -> export round trips (binary values too), an import killed with
// SIGKILL midway and rerun stores every line once, bad input and a missing keyspace fail
// naming the problem, and remote mode says why it cannot import.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type Item, type ObjectStore, openStore, StoreReader } from "@klstore/core";
import { freePort } from "../../../e2e/support/processes.ts";
import { backends, S3_BUCKET } from "../../core/test/backends.ts";

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

const MAIN = new URL("../src/main.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "klstore-import-"));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

function start(args: readonly string[]) {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const done = once(child, "exit").then(([code, signal]) => ({ code: code as number | null, signal, out, err }));
  return { child, done };
}

const klstore = (url: string, ...args: string[]): Promise<Run> => start(["--store", url, ...args]).done;

function file(name: string, text: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

interface Summary {
  readonly files_already_imported: number;
  readonly files_read_again: number;
  readonly lines: number;
  readonly items_appended: number;
  readonly duplicates_skipped: number;
  readonly lines_already_imported: number;
  readonly keys: number;
}

/** The summary is the last JSON line on stderr. */
function summary(run: Run): Summary {
  const last = run.err.trim().split("\n").at(-1) ?? "";
  return JSON.parse(last);
}

const jsonl = (run: Run) =>
  run.out
    .split("\n")
    .filter((l) => l)
    .map((l) => JSON.parse(l));

async function readAll(store: ObjectStore, prefix: string, keyspace: string, key: string): Promise<Item[]> {
  const reader = new StoreReader({ store, prefix });
  const items: Item[] = [];
  let continuation: string | undefined;
  do {
    const page = await reader.readPage(keyspace, key, { maxSize: 10_000, continuation });
    items.push(...page.items);
    continuation = page.continuation;
  } while (continuation);
  return items;
}

for (const backend of backends()) {
  describe(`klstore import/export (${backend.name})`, () => {
    it("imports jsonl and csv, and exports exactly what was imported", async () => {
      const { url, cleanup } = await backend.open();
      try {
        assert.equal((await klstore(url, "keyspace", "create", "ks")).code, 0);
        const a = file(
          `a-${backend.name}.jsonl`,
          [
            '{"key":"user/1","value":"hello","nonce":"7","timestamp":1700000000000}',
            "",
            '{"key":"user/2","value":"AAH/","encoding":"base64","timestamp":1700000000001,"offset":99}',
            '{"key":"user/1","value":"again","nonce":"6"}',
            '{"key":"user/1","nonce":8,"timestamp":"1700000000002"}',
          ].join("\n"),
        );
        const b = file(
          `b-${backend.name}.csv`,
          'id,text,nonce,timestamp\nuser/2,"comma, ""quoted""",,1700000000003\ncsv key,line two,12,\n',
        );
        const run = await klstore(url, "import", "ks", a, b, "--key-column", "key");
        // --key-column applies to both files: the csv has no "key" column.
        assert.equal(run.code, 1);
        assert.match(run.err, /b-.*\.csv line 1: the header has no "key" column \(columns: id, text, nonce, timestamp/);
        assert.equal(jsonl(await klstore(url, "export", "ks")).length, 0, "a bad file stops the import before writing");
        const twice = file(`twice-${backend.name}.csv`, "key,value,value\nk,one,two\n");
        const repeated = await klstore(url, "import", "ks", twice);
        assert.equal(repeated.code, 1);
        assert.match(repeated.err, /twice-.*\.csv line 1: the header names "value" twice/);

        const ok = await klstore(url, "import", "ks", a);
        assert.equal(ok.code, 0, ok.err);
        const csv = await klstore(url, "import", "ks", b, "--key-column", "id", "--value-column", "text");
        assert.equal(csv.code, 0, csv.err);
        assert.deepEqual(
          [summary(ok), summary(csv)].map((s) => [s.lines, s.items_appended, s.duplicates_skipped, s.keys]),
          [
            [4, 3, 1, 2],
            [2, 2, 0, 2],
          ],
        );
        const exported = await klstore(url, "export", "ks");
        assert.equal(exported.code, 0, exported.err);
        assert.deepEqual(jsonl(exported), [
          { key: "csv key", value: "line two", offset: 0, nonce: "12", timestamp: jsonl(exported)[0].timestamp },
          { key: "user/1", value: "hello", offset: 0, nonce: "7", timestamp: 1700000000000 },
          { key: "user/1", value: "", offset: 1, nonce: "8", timestamp: 1700000000002 },
          { key: "user/2", value: "AAH/", encoding: "base64", offset: 0, timestamp: 1700000000001 },
          { key: "user/2", value: 'comma, "quoted"', offset: 1, timestamp: 1700000000003 },
        ]);
        assert.deepEqual(jsonl(await klstore(url, "export", "ks", "user/2", "nobody")).length, 2);
      } finally {
        await cleanup();
      }
    });

    it("a file too large to keep from the check is read again, with the same result", async () => {
      const { url, cleanup } = await backend.open();
      try {
        const lines = Array.from({ length: 3000 }, (_, i) => `{"key":"k${i % 7}","value":"${i}:${"x".repeat(900)}"}`);
        const data = file(`large-${backend.name}.jsonl`, `${lines.join("\n")}\n`);
        const exports: unknown[][] = [];
        // 3,000 rows of about 1 KB: kept with the default buffer, read again with 1 MB.
        for (const [ks, extra] of [
          ["kept", []],
          ["reread", ["--buffer-mb", "1"]],
        ] as const) {
          assert.equal((await klstore(url, "keyspace", "create", ks)).code, 0);
          const run = await klstore(url, "import", ks, data, ...extra);
          assert.equal(run.code, 0, run.err);
          assert.equal(summary(run).items_appended, lines.length);
          assert.equal(summary(run).files_read_again, ks === "reread" ? 1 : 0);
          const exported = jsonl(await klstore(url, "export", ks));
          exports.push(exported.map(({ timestamp: _, ...rest }) => rest));
        }
        assert.equal(exports[0]?.length, lines.length);
        assert.deepEqual(exports[1], exports[0]);
      } finally {
        await cleanup();
      }
    });

    it("export -> import into another store -> export gives the same jsonl, binary values included", async () => {
      const source = await backend.open();
      const target = await backend.open();
      const shifted = await backend.open();
      try {
        for (const { url } of [source, target, shifted])
          assert.equal((await klstore(url, "keyspace", "create", "ks")).code, 0);
        const lines = Array.from({ length: 3000 }, (_, i) => {
          const key = ["a", "ü/ß", "b b", ".dot"][i % 4] as string;
          const binary = i % 7 === 0;
          const value = binary
            ? Buffer.from([0xff, 0xfe, i & 0xff, 0x80]).toString("base64")
            : `v${i} "quoted" \\ ${"x".repeat(i % 50)}`;
          return JSON.stringify({
            key,
            value,
            ...(binary ? { encoding: "base64" } : {}),
            ...(i % 3 === 0 ? { nonce: String(1000 + i) } : {}),
            timestamp: 1_700_000_000_000 + i,
          });
        });
        assert.equal(
          (await klstore(source.url, "import", "ks", file(`src-${backend.name}.jsonl`, lines.join("\n")))).code,
          0,
        );
        const first = await klstore(source.url, "export", "ks", "--output", join(dir, `first-${backend.name}.jsonl`));
        assert.equal(first.code, 0, first.err);
        const firstText = readFileSync(join(dir, `first-${backend.name}.jsonl`), "utf8");
        assert.equal(firstText.split("\n").filter((l) => l).length, 3000);
        assert.match(firstText, /"encoding":"base64"/);

        assert.equal((await klstore(target.url, "import", "ks", join(dir, `first-${backend.name}.jsonl`))).code, 0);
        const second = await klstore(target.url, "export", "ks");
        assert.equal(second.out, firstText, "byte-identical round trip");

        // Into a key that already holds an item, the same lines land one offset later.
        const older = ["--timestamp", "1600000000000"]; // timestamps never go back within a key
        assert.equal((await klstore(shifted.url, "append", "ks", "a", "already here", ...older)).code, 0);
        assert.equal((await klstore(shifted.url, "import", "ks", join(dir, `first-${backend.name}.jsonl`))).code, 0);
        const third = jsonl(await klstore(shifted.url, "export", "ks"));
        const before = third.findIndex((l) => l.value === "already here");
        assert.deepEqual([third[before].key, third[before].offset], ["a", 0]);
        third.splice(before, 1);
        assert.deepEqual(
          third,
          jsonl({ code: 0, err: "", out: firstText }).map((l) => (l.key === "a" ? { ...l, offset: l.offset + 1 } : l)),
        );
      } finally {
        await source.cleanup();
        await target.cleanup();
        await shifted.cleanup();
      }
    });

    it("a bad line fails naming file and line, stores nothing of that file, and a fixed rerun imports once", async () => {
      const { url, cleanup } = await backend.open();
      try {
        assert.equal((await klstore(url, "keyspace", "create", "ks")).code, 0);
        const good = file(`good-${backend.name}.jsonl`, '{"key":"k","value":"first file"}\n');
        const badPath = join(dir, `bad-${backend.name}.jsonl`);
        const goodLines = Array.from({ length: 50 }, (_, i) => `{"key":"k${i % 5}","value":"line ${i + 1}"}`);
        for (const [broken, message] of [
          ["{not json", /bad-.*\.jsonl line 31: not JSON/],
          ['{"key":"","value":"x"}', /bad-.*\.jsonl line 31 key: must be a non-empty string/],
          ['{"value":"x"}', /bad-.*\.jsonl line 31: expected a string "key"/],
          ['{"key":"k","value":"x","nonce":-1}', /bad-.*\.jsonl line 31 nonce: -1 is outside/],
          ['{"key":"k","value":"x","timestamp":1.5}', /bad-.*\.jsonl line 31 timestamp: 1\.5 is not an integer/],
          // Node's decoder would store other bytes (or none) for these instead of failing.
          ['{"key":"k","value":"!!!notb64","encoding":"base64"}', /bad-.*\.jsonl line 31 value: is not base64/],
          ['{"key":"k","value":"aGk","encoding":"base64"}', /bad-.*\.jsonl line 31 value: is not base64/],
          ['{"key":"k","value":"\\ud800"}', /bad-.*\.jsonl line 31 value: holds a lone surrogate/],
        ] as const) {
          writeFileSync(badPath, [...goodLines.slice(0, 30), broken, ...goodLines.slice(30)].join("\n"));
          const run = await klstore(url, "import", "ks", good, badPath);
          assert.equal(run.code, 1, run.err);
          assert.match(run.err, message);
        }
        // The first file's check passed but nothing is written until every file checked.
        assert.equal(jsonl(await klstore(url, "export", "ks")).length, 0);
        writeFileSync(badPath, goodLines.join("\n"));
        const fixed = await klstore(url, "import", "ks", good, badPath);
        assert.equal(fixed.code, 0, fixed.err);
        assert.equal(summary(fixed).items_appended, 51);
        const again = await klstore(url, "import", "ks", good, badPath);
        assert.equal(again.code, 0, again.err);
        assert.equal(summary(again).items_appended, 0);
        assert.equal(summary(again).files_already_imported, 2);
        assert.equal(jsonl(await klstore(url, "export", "ks")).length, 51);
      } finally {
        await cleanup();
      }
    });

    it("refuses a missing keyspace (naming the store), a missing file, and remote mode, saying why", async () => {
      const { url, prefix, cleanup } = await backend.open();
      try {
        const data = file(`one-${backend.name}.jsonl`, '{"key":"k","value":"v"}\n');
        const missing = await klstore(url, "import", "nope", data);
        assert.equal(missing.code, 1);
        const where = url.startsWith("file://") ? url : `s3://${S3_BUCKET}/${prefix}`;
        assert.match(missing.err, new RegExp(`keyspace "nope" does not exist in ${escapeRegExp(where)}`));
        const exportMissing = await klstore(url, "export", "nope");
        assert.equal(exportMissing.code, 1);
        assert.match(exportMissing.err, new RegExp(`keyspace "nope" does not exist in ${escapeRegExp(where)}`));
        assert.equal((await klstore(url, "keyspace", "create", "ks")).code, 0);
        const noFile = await klstore(url, "import", "ks", join(dir, "no-such-file.jsonl"));
        assert.equal(noFile.code, 1);
        assert.match(noFile.err, /cannot read .*no-such-file\.jsonl/);
        const remote = await start(["--writer", "127.0.0.1:1", "import", "ks", data]).done;
        assert.equal(remote.code, 2, "a usage error");
        assert.match(remote.err, /import writes large objects straight to storage.*give --store URL or --config FILE/);
        const remoteExport = await start(["--reader", "127.0.0.1:1", "export", "ks"]).done;
        assert.equal(remoteExport.code, 2, "a usage error");
        assert.match(remoteExport.err, /no key listing: name the keys to export, or export with --store/);
      } finally {
        await cleanup();
      }
    });

    it("an import killed midway and rerun stores every line exactly once per key, in file order", async (t) => {
      const { url, store, prefix, cleanup } = await backend.open();
      const KEYS = 50;
      const LINES = 200_000;
      try {
        assert.equal((await klstore(url, "keyspace", "create", "ks")).code, 0);
        const text: string[] = [];
        for (let i = 1; i <= LINES; i++) text.push(`{"key":"key-${i % KEYS}","value":"line ${i} ${"v".repeat(64)}"}`);
        const data = file(`big-${backend.name}.jsonl`, `${text.join("\n")}\n`);
        // 32 KiB objects: hundreds of commits, so the kill lands among them.
        const config = file(
          `kill-${backend.name}.ini`,
          `[store]\nurl="${url}"\n[writer]\ncompact_size_threshold=32768\n`,
        );
        const importArgs = ["import", "ks", data, "--config", config];

        /** Lines the import record says are stored: per key, its lines up to linesDone. */
        const recordedLines = (record: { keys: Record<string, { linesDone: number }> }) =>
          Object.entries(record.keys).reduce((sum, [key, p]) => {
            const firstLine = Number(key.slice("key-".length)) || KEYS;
            return sum + (p.linesDone < firstLine ? 0 : Math.floor((p.linesDone - firstLine) / KEYS) + 1);
          }, 0);
        const readRecord = async () => {
          const listed = await store.list(`${prefix}ks/.imports/`);
          const key = listed.objects.find((o) => o.key.endsWith(".json"))?.key;
          const body = key === undefined ? undefined : await store.get(key);
          return body ? JSON.parse(Buffer.from(body.body).toString()) : undefined;
        };

        const first = start(importArgs);
        const deadline = Date.now() + 90_000;
        // Killed once the record shows lines stored, with more commits in flight. Its first
        // write follows the first commit; the next comes a second later, and on a fast store
        // that one may already say the import is complete.
        for (;;) {
          const record = await readRecord();
          if (record && recordedLines(record) > 0) break;
          assert.ok(Date.now() < deadline && first.child.exitCode === null, "the import recorded progress in time");
          await sleep(20);
        }
        first.child.kill("SIGKILL");
        const killed = await first.done;
        assert.equal(killed.signal, "SIGKILL", `the import was still running: ${killed.err}`);
        const record = await readRecord();
        assert.equal(record.complete, false, "killed before it completed");
        const reader = new StoreReader({ store, prefix });
        let stored = 0n;
        for (let k = 0; k < KEYS; k++) stored += (await reader.readKeyMetadata("ks", `key-${k}`))?.itemCount ?? 0n;
        t.diagnostic(`killed run stored ${stored} of ${LINES} lines; its record covered ${recordedLines(record)}`);

        const rerun = start(importArgs);
        const finished = await rerun.done;
        assert.equal(finished.code, 0, finished.err);
        const s = summary(finished);
        assert.ok(s.lines_already_imported > 0, "the rerun skipped what the killed run stored");
        assert.equal(s.items_appended + s.lines_already_imported, LINES);

        const { store: reading, prefix: readingPrefix } = openStore(url);
        try {
          for (let k = 0; k < KEYS; k++) {
            const items = await readAll(reading, readingPrefix, "ks", `key-${k}`);
            const lines = items.map((i) => Number(/^line (\d+) /.exec(Buffer.from(i.value).toString())?.[1]));
            const expected = Array.from({ length: LINES / KEYS }, (_, j) => (k === 0 ? KEYS : k) + j * KEYS);
            assert.deepEqual(lines, expected, `key-${k}: every line once, in file order`);
            assert.deepEqual(
              items.map((i) => i.offset),
              items.map((_, i) => BigInt(i)),
            );
          }
        } finally {
          await reading.close();
        }

        const third = await start(importArgs).done;
        assert.equal(third.code, 0, third.err);
        assert.equal(summary(third).files_already_imported, 1);
        assert.equal(summary(third).items_appended, 0);
      } finally {
        await store.close();
        await cleanup();
      }
    });
  });
}

describe("klstore export in remote mode (klstore dev on a folder)", () => {
  it("exports named keys through the reader exactly as direct mode does", async () => {
    const data = mkdtempSync(join(tmpdir(), "klstore-export-remote-"));
    const url = `file://${data}`;
    try {
      assert.equal((await klstore(url, "keyspace", "create", "ks")).code, 0);
      const lines = ['{"key":"a","value":"x","nonce":"1"}', '{"key":"b","value":"//8=","encoding":"base64"}'];
      assert.equal((await klstore(url, "import", "ks", file("remote.jsonl", lines.join("\n")))).code, 0);
      const [writerPort, readerPort] = [await freePort(), await freePort()];
      const dev = spawn(
        process.execPath,
        [MAIN, "dev", "--data", data, "--writer-port", `${writerPort}`, "--reader-port", `${readerPort}`],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      try {
        for await (const line of createInterface({ input: dev.stdout })) if (line.startsWith("reader ")) break;
        const reader = ["--reader", `127.0.0.1:${readerPort}`];
        const remote = await start([...reader, "export", "ks", "a", "b"]).done;
        assert.equal(remote.code, 0, remote.err);
        assert.equal(remote.out, (await klstore(url, "export", "ks")).out);
      } finally {
        dev.kill("SIGTERM");
        await once(dev, "exit");
      }
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });
});
