// `read --follow` and `watch` in remote mode when their reader goes away, as real processes:
// a reader stopped (SIGTERM: it ends its streams cleanly) or killed (SIGKILL: the client's
// reconnects fail). Either way the tail says which reader, why and where to resume, and
// exits 1 instead of 0; Ctrl-C still ends it with 0.
// Needs: the filesystem only (the reader process is what is tested, not the store).

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type ServedProcess, serve } from "../../../e2e/support/processes.ts";

const MAIN = new URL("../src/main.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "klstore-tail-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const WAIT_MILLIS = 30_000;

/** A store with keyspace ks holding k = [a, b], and a reader serving it. */
async function readerOnNewStore(name: string): Promise<{ store: string; reader: ServedProcess }> {
  const store = `file://${join(dir, name)}`;
  direct(store, "keyspace", "create", "ks");
  direct(store, "append", "ks", "k", "a", "b");
  const config = join(dir, `${name}.ini`);
  writeFileSync(config, `[store]\nurl="${store}"\n[reader]\nfollow_poll_millis=100\n[server]\nlog_level=warn\n`);
  return { store, reader: await serve("reader", config, ["reader.listen=127.0.0.1:0"]) };
}

function direct(store: string, ...args: string[]): void {
  const res = spawnSync(process.execPath, [MAIN, "--store", store, ...args], { encoding: "utf8" });
  assert.equal(res.status, 0, res.stderr);
}

/** The CLI as a running process, its output collected. */
function tail(args: readonly string[]) {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return { child, exited, lines: () => out.split("\n").filter((l) => l), err: () => err };
}

async function until(what: string, ready: () => boolean, step?: () => void): Promise<void> {
  const deadline = Date.now() + WAIT_MILLIS;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    step?.();
    await sleep(100);
  }
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("remote tails when the reader goes away", () => {
  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    const why =
      signal === "SIGTERM"
        ? "ended the stream \\(it stopped or restarted\\)"
        : "closed the stream: UNAVAILABLE: [^\\n]+";

    it(`read --follow: a reader stopped by ${signal} is named, with the offset to resume from, exit 1`, async () => {
      const { reader } = await readerOnNewStore(`follow-${signal}`);
      const follower = tail(["--reader", reader.address, "read", "ks", "k", "--follow", "--output", "text"]);
      try {
        await until("the items already stored", () => follower.lines().length === 2);
        reader.child.kill(signal);
        await reader.exited;
        const code = await follower.exited;
        assert.equal(code, 1, follower.err());
        assert.match(
          follower.err(),
          new RegExp(
            `^klstore: reader ${escape(reader.address)} ${why}; read --follow stopped, resume with --from-offset 2\\n$`,
          ),
        );
      } finally {
        follower.child.kill("SIGKILL");
        reader.child.kill("SIGKILL");
      }
    });

    it(`watch: a reader stopped by ${signal} is named, with the cursor to resume from, exit 1`, async () => {
      const { store, reader } = await readerOnNewStore(`watch-${signal}`);
      const watcher = tail(["--reader", reader.address, "watch", "ks"]);
      try {
        // The watch starts from now, which only its output shows: append until it prints.
        await until(
          "a change",
          () => watcher.lines().length > 0,
          () => direct(store, "append", "ks", "w", "x"),
        );
        reader.child.kill(signal);
        await reader.exited;
        const code = await watcher.exited;
        assert.equal(code, 1, watcher.err());
        assert.match(
          watcher.err(),
          new RegExp(
            `^klstore: reader ${escape(reader.address)} ${why}; the watch stopped, resume with --cursor \\S+\\n$`,
          ),
        );
      } finally {
        watcher.child.kill("SIGKILL");
        reader.child.kill("SIGKILL");
      }
    });
  }

  it("read --follow and watch still end with 0 on Ctrl-C", async () => {
    const { store, reader } = await readerOnNewStore("ctrl-c");
    try {
      const follower = tail(["--reader", reader.address, "read", "ks", "k", "--follow"]);
      await until("the items already stored", () => follower.lines().length === 2);
      const watcher = tail(["--reader", reader.address, "watch", "ks"]);
      await until(
        "a change",
        () => watcher.lines().length > 0,
        () => direct(store, "append", "ks", "w", "x"),
      );
      for (const t of [follower, watcher]) {
        t.child.kill("SIGINT");
        assert.equal(await t.exited, 0, t.err());
        assert.equal(t.err(), "");
      }
    } finally {
      reader.child.kill("SIGKILL");
    }
  });
});
