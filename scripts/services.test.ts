// scripts/services.sh lets checkouts run their own SeaweedFS side by side: two state folders
// (two checkouts) get disjoint ports, all ten of them, each `env` reports its own server,
// and stop removes the server, its ports file and the sockets it left in /tmp. A server
// not running here is looked for on the usual or pinned port; the old variable names work,
// with a warning.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";

const SERVICES = join(import.meta.dirname, "services.sh");

function services(dir: string, args: string[], extra: Record<string, string> = {}) {
  const env: NodeJS.ProcessEnv = { ...process.env, KLSTORE_SERVICES_DIR: dir, ...extra };
  for (const name of ["KLSTORE_SERVICES_S3_PORT", "KLSTORE_S3_PORT"]) if (!(name in extra)) delete env[name];
  return promisify(execFile)(SERVICES, args, { env, timeout: 280_000 });
}

function portsOf(dir: string): Map<string, number> {
  const text = readFileSync(join(dir, "s3.ports"), "utf8");
  return new Map(
    text
      .trim()
      .split("\n")
      .map((line) => line.split("=") as [string, string])
      .map(([name, port]) => [name, Number(port)]),
  );
}

async function endpointOf(dir: string, extra: Record<string, string> = {}): Promise<string | undefined> {
  const { stdout } = await services(dir, ["env", "s3"], extra);
  return /KLSTORE_TEST_S3_ENDPOINT=(\S+)/.exec(stdout)?.[1];
}

describe("scripts/services.sh", () => {
  it("runs a second checkout's SeaweedFS on ports of its own, reported by env, and stops exactly it", async () => {
    const first = mkdtempSync(join(tmpdir(), "klstore-services-a-"));
    const second = mkdtempSync(join(tmpdir(), "klstore-services-b-"));
    try {
      await services(first, ["start", "s3"]);
      await services(second, ["start", "s3"]);
      const a = portsOf(first);
      const b = portsOf(second);
      assert.deepEqual([...a.keys()].sort(), [
        "admin",
        "admin_grpc",
        "filer",
        "filer_grpc",
        "master",
        "master_grpc",
        "s3",
        "s3_grpc",
        "volume",
        "volume_grpc",
      ]);
      const shared = [...a.values()].filter((port) => [...b.values()].includes(port));
      assert.deepEqual(shared, [], "no port in common");
      for (const [dir, ports] of [
        [first, a],
        [second, b],
      ] as const) {
        const endpoint = await endpointOf(dir);
        assert.equal(endpoint, `http://127.0.0.1:${ports.get("s3")}`);
        const answer = await fetch(endpoint as string);
        assert.equal(answer.status, 403, "S3 answers (unsigned: refused)");
      }
      await services(second, ["stop", "s3"]);
      assert.ok(!existsSync(join(second, "s3.ports")));
      for (const port of b.values()) {
        assert.ok(!existsSync(`/tmp/seaweedfs-s3-${port}.sock`) && !existsSync(`/tmp/seaweedfs-filer-${port}.sock`));
      }
      await assert.rejects(fetch(`http://127.0.0.1:${b.get("s3")}/`), "the second server is gone");
      assert.equal((await fetch(`http://127.0.0.1:${a.get("s3")}/`)).status, 403, "the first one still answers");
    } finally {
      await services(first, ["stop", "s3"]);
      await services(second, ["stop", "s3"]);
    }
  });

  it("looks for a server it did not start on the usual or pinned port; takes the old names, with a warning", async () => {
    const dir = mkdtempSync(join(tmpdir(), "klstore-services-c-"));
    assert.equal(await endpointOf(dir), "http://127.0.0.1:8333");
    assert.equal(await endpointOf(dir, { KLSTORE_SERVICES_S3_PORT: "12345" }), "http://127.0.0.1:12345");
    const old = await services(dir, ["env", "s3"], { KLSTORE_S3_PORT: "12346" });
    assert.match(old.stdout, /KLSTORE_TEST_S3_ENDPOINT=http:\/\/127\.0\.0\.1:12346/);
    assert.match(old.stderr, /KLSTORE_S3_PORT is now KLSTORE_SERVICES_S3_PORT/);
  });
});
