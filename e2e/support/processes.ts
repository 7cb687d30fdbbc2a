// Real klstore processes for end-to-end tests: `klstore serve writer|reader` started as
// child processes from a config file, exactly as an operator would run them.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { S3_ACCESS_KEY, S3_BUCKET, S3_ENDPOINT, S3_SECRET_KEY } from "../../packages/core/test/backends.ts";

export const ROOT = resolve(import.meta.dirname, "../..");
export const CLI = join(ROOT, "packages/cli/src/main.ts");

// The same SeaweedFS and bucket as the core's integration tests; each test takes a fresh prefix.
export {
  ensureBucket,
  S3_ACCESS_KEY,
  S3_BUCKET,
  S3_ENDPOINT,
  S3_SECRET_KEY,
} from "../../packages/core/test/backends.ts";

/**
 * A free port for a server that must know its address before it starts (writer shards list
 * each other). Chosen below Linux's ephemeral range (32768 and up), which is where every
 * `listen(0)` and outgoing connection takes its port: a port the kernel handed out and
 * took back could be handed to another test's server before ours binds it (EADDRINUSE).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const server = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => resolve(true));
    });
    if (bound) {
      await new Promise((resolve) => server.close(resolve));
      return port;
    }
  }
}

/** Starts processes together; if one fails, stops the others before rethrowing, so none is left running. */
export async function serveAll(starts: readonly (() => Promise<ServedProcess>)[]): Promise<ServedProcess[]> {
  const results = await Promise.allSettled(starts.map((start) => start()));
  const failed = results.find((r) => r.status === "rejected");
  if (!failed) return results.map((r) => (r as PromiseFulfilledResult<ServedProcess>).value);
  await Promise.all(results.flatMap((r) => (r.status === "fulfilled" ? [stop(r.value)] : [])));
  throw failed.reason;
}

/**
 * A config file for every process of one test: SeaweedFS under a fresh prefix, reached at
 * `endpoint` (a fault-injecting proxy in front of it, say) when given, and a forwarding
 * secret of its own, as a deployment has (its shards trust each other's forwards).
 */
export function writeConfig(extra = "", endpoint = S3_ENDPOINT): { file: string; prefix: string } {
  const dir = mkdtempSync(join(tmpdir(), "klstore-e2e-"));
  const prefix = `e2e-${Date.now()}-${Math.random().toString(36).slice(2, 8)}/`;
  const file = join(dir, "klstore.ini");
  writeFileSync(
    file,
    `[s3]
endpoint="${endpoint}"
bucket_name="${S3_BUCKET}"
object_prefix="${prefix}"
path_style=true
access_key="${S3_ACCESS_KEY}"
secret_key="${S3_SECRET_KEY}"
[writer]
forwarding_secret="${randomBytes(24).toString("base64url")}"
[reader]
follow_poll_millis=100
[server]
log_level=warn
${extra}`,
  );
  return { file, prefix };
}

export interface ServedProcess {
  readonly role: "writer" | "reader";
  readonly address: string;
  readonly metrics: string | null;
  readonly child: ChildProcess;
  readonly stderr: string[];
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
}

/**
 * Children still running. A test file that ends without stopping them (a failed before
 * hook, the runner stopping a hung file with SIGTERM) takes them along, so no `klstore
 * serve` outlives its test file; scripts/test-runner ends the rest of the run's group.
 */
const children = new Set<ChildProcess>();
function endChildren(): void {
  for (const child of children) child.kill("SIGKILL");
}
process.on("exit", endChildren);
for (const [signal, code] of [
  ["SIGTERM", 143],
  ["SIGINT", 130],
] as const) {
  process.once(signal, () => {
    endChildren();
    process.exit(code);
  });
}

/** Ended with this process if it has not exited by then. */
export function endWithThisProcess<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** Starts `klstore serve ROLE --config FILE --set ...` and waits for its address line. */
export async function serve(
  role: "writer" | "reader",
  configFile: string,
  sets: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<ServedProcess> {
  const args = [CLI, "serve", role, "--config", configFile, ...sets.flatMap((s) => ["--set", s])];
  const child = endWithThisProcess(spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env }));
  const stderr: string[] = [];
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", (line) => stderr.push(line));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const first = await Promise.race([
    once(lines, "line").then(([line]) => line as string),
    exited.then((code) => {
      throw new Error(`klstore serve ${role} exited with ${code} before serving:\n${stderr.join("\n")}`);
    }),
  ]);
  const ready = JSON.parse(first) as { address: string; metrics: string | null };
  return { role, address: ready.address, metrics: ready.metrics, child, stderr, exited };
}

/** SIGTERM, then the exit code (the process flushes before it exits). */
export async function stop(served: ServedProcess): Promise<number | null> {
  if (served.child.exitCode === null) served.child.kill("SIGTERM");
  return served.exited;
}

/** A Prometheus metric's value summed over the label sets matching `labels`. */
export async function scrape(
  metricsAddress: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    const match = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries(
      [...(match[2] ?? "").matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1] as string, m[2] as string]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(match[3]);
  }
  return sum;
}

/** Runs the CLI to completion; resolves with its exit code and output. */
export async function runCli(
  args: string[],
  input?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = endWithThisProcess(spawn(process.execPath, [CLI, ...args], { stdio: ["pipe", "pipe", "pipe"] }));
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  child.stdin.end(input ?? "");
  const [code] = await once(child, "exit");
  return { code: code as number | null, stdout, stderr };
}
