// CLI start-up: the wall time, CPU and peak RSS of short `bin/klstore` commands, each run as
// its own process as a user runs it: --version, and a direct-mode stat on a file:// store
// (and on S3, when given), with Node's compile cache warm (every run after the first), cold
// (the first run after an install or upgrade) and off; and the launcher's toolchain check
// alone. Wall time and CPU (the launcher's bash and node together) come from bash's clock
// and `times`; peak RSS is node's own (process.resourceUsage, reported at exit).

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fmt, markdownTable } from "../report.ts";

const ROOT = resolve(import.meta.dirname, "../../..");
const KLSTORE = join(ROOT, "bin/klstore");

export const CLI_STARTUP_RUNS = { smoke: 2, full: 20 } as const;

export interface StartupRow {
  readonly command: string;
  readonly compileCache: "warm" | "cold" | "off" | "–";
  readonly runs: number;
  readonly wallMillis: { readonly median: number; readonly max: number };
  readonly cpuMillis: number;
  /** Undefined for a row that starts no node (the toolchain check). */
  readonly rssMegabytes: number | undefined;
}

interface Sample {
  readonly wallMillis: number;
  readonly cpuMillis: number;
  readonly rssMegabytes: number | undefined;
}

/** Writes node's CPU and peak RSS to a file at exit; preloaded through NODE_OPTIONS. */
const USAGE_REPORTER = `import { writeFileSync } from "node:fs";
process.on("exit", () => {
  const u = process.resourceUsage();
  writeFileSync(process.env.KLSTORE_BENCH_USAGE_FILE, JSON.stringify({ maxRssKilobytes: u.maxRSS }));
});
`;

/** `times` prints the shell's and then its children's user and system time, as 0m0.031s. */
function childrenCpuMillis(timesOutput: string): number {
  const line = timesOutput.trim().split("\n").at(-1) ?? "";
  const seconds = [...line.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return seconds.reduce((a, b) => a + b, 0) * 1000;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** One run of `command` (argv) under bash; fails loudly if the command failed. */
function sample(work: string, command: readonly string[], env: NodeJS.ProcessEnv, node: boolean): Sample {
  const usageFile = join(work, "usage.json");
  rmSync(usageFile, { force: true });
  const script =
    's=$EPOCHREALTIME; "$@" >/dev/null 2>"$KLSTORE_BENCH_STDERR" || exit $?; e=$EPOCHREALTIME; echo "$s $e"; times';
  const res = spawnSync("bash", ["-c", script, "bash", ...command], {
    encoding: "utf8",
    env: {
      ...env,
      KLSTORE_BENCH_USAGE_FILE: usageFile,
      KLSTORE_BENCH_STDERR: join(work, "stderr"),
      ...(node ? { NODE_OPTIONS: `--import=${join(work, "usage-reporter.mjs")}` } : {}),
    },
  });
  if (res.status !== 0) {
    const err = readFileSync(join(work, "stderr"), "utf8");
    throw new Error(`${command.join(" ")} exited with ${res.status}: ${err}${res.stderr}`);
  }
  const [first, ...rest] = res.stdout.trim().split("\n");
  const [started, ended] = (first ?? "").split(" ").map(Number) as [number, number];
  const rss = node
    ? (JSON.parse(readFileSync(usageFile, "utf8")) as { maxRssKilobytes: number }).maxRssKilobytes / 1024
    : undefined;
  return { wallMillis: (ended - started) * 1000, cpuMillis: childrenCpuMillis(rest.join("\n")), rssMegabytes: rss };
}

function row(command: string, compileCache: StartupRow["compileCache"], samples: readonly Sample[]): StartupRow {
  const rss = samples.flatMap((s) => (s.rssMegabytes === undefined ? [] : [s.rssMegabytes]));
  return {
    command,
    compileCache,
    runs: samples.length,
    wallMillis: {
      median: median(samples.map((s) => s.wallMillis)),
      max: Math.max(...samples.map((s) => s.wallMillis)),
    },
    cpuMillis: median(samples.map((s) => s.cpuMillis)),
    rssMegabytes: rss.length > 0 ? median(rss) : undefined,
  };
}

/**
 * Measures each command `runs` times. `s3Store` is a store URL on the benchmark's S3 server
 * (a stat there loads the S3 SDK, which a file:// stat never does).
 */
export function cliStartup(options: { readonly runs: number; readonly s3Store?: string | undefined }): StartupRow[] {
  const work = mkdtempSync(join(tmpdir(), "klstore-cli-startup-"));
  try {
    writeFileSync(join(work, "usage-reporter.mjs"), USAGE_REPORTER);
    const warmCache = join(work, "compile-cache");
    const base: NodeJS.ProcessEnv = { ...process.env, NODE_COMPILE_CACHE: warmCache };
    delete base.NODE_DISABLE_COMPILE_CACHE;
    const fileStore = `file://${join(work, "store")}`;
    const stores = [fileStore, ...(options.s3Store ? [options.s3Store] : [])];
    for (const store of stores) {
      sample(work, [KLSTORE, "--store", store, "keyspace", "create", "startup"], base, true);
      sample(work, [KLSTORE, "--store", store, "append", "startup", "k", "a", "b", "c"], base, true); // warms the cache too
    }
    const runs = (command: readonly string[], env: (i: number) => NodeJS.ProcessEnv, node = true) =>
      Array.from({ length: options.runs }, (_, i) => sample(work, command, env(i), node));
    const stat = (store: string) => [KLSTORE, "--store", store, "stat", "startup", "k"];
    const rows = [
      row(
        "klstore --version",
        "warm",
        runs([KLSTORE, "--version"], () => base),
      ),
      row(
        "klstore stat (file://)",
        "warm",
        runs(stat(fileStore), () => base),
      ),
      row(
        "klstore stat (file://)",
        "cold",
        runs(stat(fileStore), (i) => ({ ...base, NODE_COMPILE_CACHE: join(work, `cold-${i}`) })),
      ),
      row(
        "klstore stat (file://)",
        "off",
        runs(stat(fileStore), () => ({ ...base, NODE_DISABLE_COMPILE_CACHE: "1" })),
      ),
    ];
    if (options.s3Store)
      rows.push(
        row(
          "klstore stat (s3://)",
          "warm",
          runs(stat(options.s3Store), () => base),
        ),
      );
    const check = ["bash", "-c", `source ${join(ROOT, "scripts/toolchain.sh")}`];
    rows.push(
      row(
        "toolchain check alone (bin/klstore's launcher)",
        "–",
        runs(check, () => base, false),
      ),
    );
    return rows;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The rows as the report's table: medians, and the slowest run's wall time. */
export function startupTable(rows: readonly StartupRow[]): string {
  return markdownTable(
    ["command", "compile cache", "runs", "wall ms (median)", "wall ms (max)", "CPU ms (median)", "peak RSS MB"],
    rows.map((r) => [
      r.command,
      r.compileCache,
      fmt(r.runs),
      fmt(r.wallMillis.median),
      fmt(r.wallMillis.max),
      fmt(r.cpuMillis),
      r.rssMegabytes === undefined ? "–" : fmt(r.rssMegabytes),
    ]),
  );
}
