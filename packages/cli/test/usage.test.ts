// The CLI's contract with a shell, as real processes: usage errors exit 2 (commander's and
// the commands' own), failures 1, a bad config 78; every subcommand's --help shows the
// global options; --version prints the package's version; "does not exist" names the store
// it looked in; a service that is not there is one line naming it, with no grpc-js leftovers.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { freePort } from "../../../e2e/support/processes.ts";
import { backends, S3_BUCKET } from "../../core/test/backends.ts";

const MAIN = new URL("../src/main.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "klstore-usage-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function klstore(args: readonly string[]) {
  const res = spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8", input: "" });
  return { code: res.status, out: res.stdout, err: res.stderr };
}

/** Every command path, as the help lists them (so a new command is covered without editing this). */
function commandsOf(path: readonly string[]): string[][] {
  const help = klstore([...path, "--help"]).out;
  const section = help.split("\nCommands:\n")[1] ?? "";
  return section
    .split("\n")
    .map((line) => /^ {2}([a-z][a-z-]*)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined && name !== "help")
    .map((name) => [...path, name]);
}

describe("klstore CLI usage and exit codes", () => {
  const store = `file://${dir}`;

  it("exits 2 on every kind of usage error, saying what is wrong in a klstore: line", async () => {
    const devPort = await freePort();
    const cases: string[][] = [
      [],
      ["bogus"],
      ["stat"],
      ["stat", "a", "b", "c"],
      ["read", "a", "b", "--limit", "x"],
      ["read", "a", "b", "--nope"],
      ["keyspace"],
      ["keyspace", "nope"],
      ["trim", "a", "b"],
      ["serve", "bogus"],
      ["dev", "--writer-port", "70000"],
      ["dev", "--shards", "3", "--writer-port", String(devPort), "--reader-port", String(devPort + 2)],
      ["--store", store, "read", "a", "b", "--from-offset", "1", "--from-nonce", "2"],
      ["--store", store, "read", "a", "b", "--follow", "--reverse"],
      ["--store", store, "append", "a", "b", "--format", "jsonl", "x"],
      ["--store", store, "--writer", "127.0.0.1:1", "stat", "a", "b"],
      ["--store", "ftp://somewhere", "stat", "a", "b"],
      ["--store", store, "shards"],
      ["--reader", "127.0.0.1:1", "keyspace", "create", "a"],
      ["--reader", "127.0.0.1:1", "export", "a"],
      ["--writer", "127.0.0.1:1", "import", "a", "file.jsonl"],
      ["--reader", "127.0.0.1:1", "--tls-cert", "client.pem", "stat", "a", "b"],
    ];
    for (const args of cases) {
      const res = klstore(args);
      const what = `klstore ${args.join(" ")}: ${res.err}`;
      assert.equal(res.code, 2, what);
      if (args.length > 1) assert.match(res.err, /^klstore: \S/, what);
      assert.doesNotMatch(res.err, /\n\s+at /, `${what}: no stack trace`);
      assert.doesNotMatch(res.err, /^error:/m, `${what}: every line reads klstore:`);
    }
  });

  it("exits 0 for --help and --version; --version is the package's", () => {
    const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    for (const flag of ["--version", "-V"]) {
      const res = klstore([flag]);
      assert.equal(res.code, 0, res.err);
      assert.equal(res.out, `${version}\n`);
    }
    assert.equal(klstore(["--help"]).code, 0);
  });

  it("shows the global options in every subcommand's --help", () => {
    const paths = commandsOf([]).flatMap((path) => [path, ...commandsOf(path)]);
    assert.ok(paths.length >= 14, `found ${paths.map((p) => p.join(" ")).join(", ")}`);
    assert.ok(paths.some((p) => p.join(" ") === "keyspace create"));
    for (const path of paths) {
      const res = klstore([...path, "--help"]);
      assert.equal(res.code, 0, `${path.join(" ")}: ${res.err}`);
      assert.match(res.out, /\nGlobal Options:\n/, path.join(" "));
      for (const option of ["--store <url>", "--writer <address>", "--reader <address>"]) {
        assert.ok(res.out.includes(option), `${path.join(" ")} --help shows ${option}`);
      }
    }
  });

  for (const backend of backends()) {
    it(`names the store a keyspace does not exist in (${backend.name})`, async () => {
      const { url, prefix, cleanup } = await backend.open();
      try {
        const where = url.startsWith("file://") ? url : `s3://${S3_BUCKET}/${prefix}`;
        for (const args of [
          ["stat", "nope", "k"],
          ["read", "nope", "k"],
          ["append", "nope", "k", "v"],
          ["keyspace", "get", "nope"],
          ["trim", "nope", "k", "--before-offset", "1"],
        ]) {
          const res = klstore(["--store", url, ...args]);
          assert.equal(res.code, 1, `${args.join(" ")}: ${res.err}`);
          assert.ok(
            res.err.startsWith(`klstore: keyspace "nope" does not exist in ${where}`),
            `${args.join(" ")}: ${res.err}`,
          );
          assert.match(res.err, /klstore keyspace create nope/, "says how to create it");
          assert.equal(res.err.trim().split("\n").length, 1, "one line");
        }
      } finally {
        await cleanup();
      }
    });
  }

  it("exits 1 naming a service that is not there, without grpc-js's empty resolution note", async () => {
    const port = await freePort(); // nothing listens there
    const cases: [string[], string][] = [
      [["--reader", `127.0.0.1:${port}`, "stat", "ks", "k"], "reader"],
      [["--reader", `127.0.0.1:${port}`, "read", "ks", "k", "--follow"], "reader"],
      [["--reader", `127.0.0.1:${port}`, "watch", "ks"], "reader"],
      [["--writer", `127.0.0.1:${port}`, "append", "ks", "k", "v"], "writer"],
    ];
    for (const [args, role] of cases) {
      const res = klstore([...args, "--timeout", "5000"]);
      const what = `${args.join(" ")}: ${res.err}`;
      assert.equal(res.code, 1, what);
      assert.match(res.err, /^klstore: UNAVAILABLE: /, what);
      assert.ok(res.err.includes(`(${role} 127.0.0.1:${port})`), `${what}: names the ${role}`);
      assert.doesNotMatch(res.err, /Resolution note|Error: Error|Last error: Error:/, what);
      assert.equal(res.err.trim().split("\n").length, 1, `${what}: one line`);
    }
  });

  it("exits 78 for a config that is wrong, naming the setting", () => {
    const res = klstore(["serve", "reader", "--set", `store.url=${store}`, "--set", "reader.no_such_key=1"]);
    assert.equal(res.code, 78, res.err);
    assert.match(res.err, /^klstore: config: .*no_such_key/);
  });
});
