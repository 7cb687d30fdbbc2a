// The test command's runner (scripts/test.sh): `node --test` over the given file patterns
// in a process group of its own, watched, so that the run ends and says truthfully why:
// - a file that stays silent (no test event) for KLSTORE_TEST_STALL_MINUTES is stopped,
//   with what it was doing (in which test, or kept alive after its last one), and the run
//   goes on: its tests fail, the others still run;
// - past KLSTORE_TEST_BUDGET_MINUTES, or on SIGINT/SIGTERM/SIGHUP, or when the shell that
//   started it goes away, the run is stopped, naming the files that had not finished and
//   those that never started (and, the shell gone, the services it started are stopped:
//   KLSTORE_TEST_STARTED_SERVICES);
// - whatever way it ends, no process of the run is left: the group is ended (SIGTERM, then
//   SIGKILL), and a process still there after the tests ended is reported and fails the run.
// Usage: node scripts/test-runner/run-tests.ts [node --test flags, as --name=value] PATTERN...

import { spawn, spawnSync } from "node:child_process";
import { closeSync, globSync, mkdtempSync, openSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { setTimeout as sleep } from "node:timers/promises";
import { endProcesses, processesInGroup, processTree, stillRunning } from "./processes.ts";
import { duration, type ProgressEvent, RunProgress } from "./progress.ts";

function setting(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!(value > 0)) {
    console.error(`run-tests: ${name}=${JSON.stringify(raw)} is not a positive number`);
    process.exit(2);
  }
  return value;
}

/** Files at once (node --test --test-concurrency). */
const CONCURRENCY = setting("KLSTORE_TEST_CONCURRENCY", 2);
/** One test's limit (--test-timeout): generous, since tests wait for conditions with their own deadlines. */
const TEST_TIMEOUT_SECONDS = setting("KLSTORE_TEST_TIMEOUT_SECONDS", 300);
/** A file with no test event for this long is stopped: longer than any one test may take. */
const STALL_MINUTES = setting("KLSTORE_TEST_STALL_MINUTES", Math.max(10, (TEST_TIMEOUT_SECONDS * 2) / 60));
/** The whole run's limit: inside CI's 90 minutes, with room for the install and lint steps. */
const BUDGET_MINUTES = setting("KLSTORE_TEST_BUDGET_MINUTES", 75);
/** How long stopped processes get to exit after SIGTERM (a klstore serve flushes) before SIGKILL. */
const GRACE_MILLIS = setting("KLSTORE_TEST_GRACE_SECONDS", 10) * 1000;
/** How long node --test may take to exit once every file has ended. */
const LINGER_MILLIS = 30_000;
const POLL_MILLIS = 1000;

const root = process.cwd();
const args = process.argv.slice(2);
const flags = args.filter((a) => a.startsWith("-"));
const patterns = args.filter((a) => !a.startsWith("-"));
const files = new Map<string, string>();
for (const pattern of patterns) {
  const matches = globSync(pattern, { exclude: (path) => path.split(/[\\/]/).includes("node_modules") });
  if (matches.length === 0) console.error(`run-tests: no test file matches ${pattern}`);
  for (const match of matches.sort()) files.set(resolve(root, match), relative(root, resolve(root, match)));
}
if (files.size === 0) {
  console.error(`run-tests: no test files match ${patterns.join(" ")}`);
  process.exit(2);
}

const progress = new RunProgress(files);
const scratch = mkdtempSync(join(tmpdir(), "klstore-test-run-"));
const progressFile = join(scratch, "progress.jsonl");
const started = Date.now();
const shell = process.ppid;

// detached: a session and process group of its own, which every test file and every
// process a test starts (klstore serve, a bridge, a Go build) belongs to unless it moves
// itself out; that group is what is ended below.
const child = spawn(
  process.execPath,
  [
    "--test",
    `--test-concurrency=${CONCURRENCY}`,
    `--test-timeout=${TEST_TIMEOUT_SECONDS * 1000}`,
    "--test-reporter=spec",
    "--test-reporter-destination=stdout",
    `--test-reporter=${join(import.meta.dirname, "progress-reporter.ts")}`,
    `--test-reporter-destination=${progressFile}`,
    ...flags,
    ...files.values(),
  ],
  { detached: true, stdio: "inherit" },
);
const group = child.pid as number;
const exited = new Promise<number>((done) => child.on("exit", (code, signal) => done(code ?? (signal ? 1 : 0))));

let readBytes = 0;
let partial = "";
const decoder = new StringDecoder("utf8");
const chunk = Buffer.alloc(1 << 16);
function readProgress(): void {
  let fd: number;
  try {
    fd = openSync(progressFile, "r");
  } catch {
    return; // not written yet
  }
  try {
    for (
      let n = readSync(fd, chunk, 0, chunk.length, readBytes);
      n > 0;
      n = readSync(fd, chunk, 0, chunk.length, readBytes)
    ) {
      readBytes += n;
      partial += decoder.write(chunk.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  const lines = partial.split("\n");
  partial = lines.pop() ?? "";
  for (const line of lines) if (line !== "") progress.apply(JSON.parse(line) as ProgressEvent);
}

function say(lines: string[]): void {
  process.stderr.write(lines.map((l) => `run-tests: ${l}\n`).join(""));
}

let stopping: { reason: string; code: number } | undefined;
const stop = (reason: string, code: number) => {
  stopping ??= { reason, code };
};
for (const [name, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
  ["SIGHUP", 129],
] as const) {
  process.on(name, () => stop(`interrupted (${name})`, code));
}

const stalled = new Set<string>();
let orphaned = false;
let lingering = false;
let outlived = 0;
let ended = false;
void exited.then(() => {
  ended = true;
});
while (!ended && !stopping) {
  await Promise.race([sleep(POLL_MILLIS), exited]);
  readProgress();
  const now = Date.now();
  if (now - started > BUDGET_MINUTES * 60_000) {
    stop(`the run took longer than KLSTORE_TEST_BUDGET_MINUTES=${BUDGET_MINUTES}`, 124);
  }
  if (process.ppid !== shell) {
    orphaned = true;
    stop("the shell that started the run went away", 129);
  }
  for (const [file, silent] of progress.silentFiles(now, STALL_MINUTES * 60_000)) {
    if (stalled.has(file)) continue;
    stalled.add(file);
    say([
      `${files.get(file)}: no test event for ${duration(silent)} (KLSTORE_TEST_STALL_MINUTES=${STALL_MINUTES}), ${progress.describeRunning(file, now)}; stopping it (its tests fail, the rest go on)`,
    ]);
    // The file's own process: a child of node --test whose last argument is the file.
    const own = processesInGroup(group).find(
      (p) => p.ppid === group && p.args.length > 0 && resolve(root, p.args.at(-1) as string) === file,
    );
    if (own) {
      const tree = processTree(own.pid);
      void endProcesses(() => stillRunning(tree), GRACE_MILLIS);
    } else {
      say([`${files.get(file)}: its process was not found; the budget or an interrupt ends it`]);
    }
  }
  // Every file has ended, yet node --test runs on: a process a test started holds one of
  // its pipes (or the runner is stuck). End everything else in the group, then it.
  const allEnded = progress.allEnded();
  if (allEnded !== undefined && now - allEnded > LINGER_MILLIS && !lingering) {
    lingering = true;
    const left = processesInGroup(group).filter((p) => p.pid !== group);
    say([
      `every test file ended ${duration(now - allEnded)} ago, but node --test has not exited; ${left.length} other process(es) of the run remain (ending them):`,
      ...left.map((p) => `  ${p.pid}: ${p.args.join(" ").slice(0, 300)}`),
    ]);
    outlived += left.length;
    void endProcesses(() => stillRunning(left), GRACE_MILLIS).then(async () => {
      await Promise.race([sleep(LINGER_MILLIS), exited]);
      if (!ended) await endProcesses(() => processesInGroup(group), GRACE_MILLIS);
    });
  }
}

readProgress();
const inGroup = () => processesInGroup(group);
let code: number;
if (stopping) {
  say([`stopping: ${stopping.reason}, after ${duration(Date.now() - started)}.`, ...progress.report(Date.now())]);
  await endProcesses(inGroup, GRACE_MILLIS);
  code = stopping.code;
  // The shell that would stop the test services it started is gone (SIGKILL): stop them here.
  const services = process.env.KLSTORE_TEST_STARTED_SERVICES?.split(" ").filter((s) => s !== "") ?? [];
  if (orphaned && services.length > 0) {
    spawnSync(join(import.meta.dirname, "../services.sh"), ["stop", ...services], { stdio: "inherit" });
  }
} else {
  code = await exited;
  // Every test file has ended: whatever is still in the group outlived the test that started it.
  const left = inGroup();
  if (left.length > 0) {
    say([
      `${left.length} process(es) outlived the tests that started them (now ended):`,
      ...left.map((p) => `  ${p.pid}: ${p.args.join(" ").slice(0, 300)}`),
    ]);
    await endProcesses(inGroup, GRACE_MILLIS);
    code ||= 1;
  }
  if (stalled.size > 0 || outlived > 0) code ||= 1;
  say([`${files.size} test files in ${duration(Date.now() - started)}; slowest: ${progress.slowest(5).join(", ")}`]);
}
rmSync(scratch, { recursive: true, force: true });
process.exit(code);
