// `klstore dev` and `klstore serve` on a port another process holds, as real processes: they
// fail with one line naming the port and the flag or setting that moves it, exit 1, and
// leave nothing running (dev starts nothing at all: its ports are checked first).
// Needs: the filesystem only (the port is what is tested, not the store).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { freePort } from "../../../e2e/support/processes.ts";

const MAIN = new URL("../src/main.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "klstore-ports-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A port held by a listener of this test process, as another program would hold it. */
async function occupy(): Promise<{ port: number; server: Server }> {
  for (;;) {
    const port = await freePort();
    const server = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => resolve(true));
    });
    if (bound) return { port, server };
  }
}

/** Runs the CLI to its exit (a process that kept running would time the test out). */
async function run(args: readonly string[]) {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const [code] = await once(child, "exit");
  return { code: code as number | null, out, err };
}

describe("klstore dev and serve on a busy port", () => {
  it("dev: a busy reader port fails at once naming it and --reader-port, and starts nothing", async () => {
    const busy = await occupy();
    try {
      const writerPort = await freePort();
      const data = join(dir, "reader-busy");
      const res = await run([
        "dev",
        "--data",
        data,
        "--writer-port",
        String(writerPort),
        "--reader-port",
        String(busy.port),
      ]);
      assert.equal(res.code, 1, res.err);
      assert.equal(res.out, "", "no server was announced");
      assert.equal(
        res.err,
        `klstore: port ${busy.port} (reader) on 127.0.0.1 is already in use (by another klstore dev?): stop it, or choose another with --reader-port\n`,
      );
      assert.ok(!existsSync(data), "not even the data folder was made");
    } finally {
      busy.server.close();
    }
  });

  it("dev: a busy port among the shards' names that shard and --writer-port", async () => {
    const busy = await occupy();
    try {
      const res = await run([
        "dev",
        "--data",
        join(dir, "shard-busy"),
        "--shards",
        "3",
        "--writer-port",
        String(busy.port - 1),
        "--reader-port",
        String(await freePort()),
      ]);
      assert.equal(res.code, 1, res.err);
      assert.match(
        res.err,
        new RegExp(`^klstore: port ${busy.port} \\(writer-1\\) on 127\\.0\\.0\\.1 is already in use`),
      );
      assert.match(res.err, /choose another with --writer-port\n$/);
      assert.equal(res.err.split("\n").length, 2, "one line");
    } finally {
      busy.server.close();
    }
  });

  it("serve: a listen address in use fails with one line naming it and the setting, exit 1", async () => {
    const busy = await occupy();
    try {
      for (const role of ["reader", "writer"]) {
        const res = await run([
          "serve",
          role,
          "--set",
          `store.url=file://${join(dir, "served")}`,
          "--set",
          `${role}.listen=127.0.0.1:${busy.port}`,
          "--set",
          "server.log_level=silent",
        ]);
        assert.equal(res.code, 1, res.err);
        assert.equal(res.out, "");
        const line = res.err.split("\n").find((l) => l.startsWith("klstore: ")) ?? "";
        assert.equal(
          line,
          `klstore: cannot listen on 127.0.0.1:${busy.port}: already in use (by another process?): stop it, or choose another with [${role}] listen (or --set ${role}.listen=HOST:PORT)`,
        );
        assert.doesNotMatch(res.err, /\n\s+at /, "no stack trace");
      }
    } finally {
      busy.server.close();
    }
  });
});
