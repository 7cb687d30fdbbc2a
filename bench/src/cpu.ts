// CPU time of every process a measured run leans on, read from /proc (Linux). Every system in
// the run shares this machine's cores, so what bounds a system's MB/s is how many CPU-seconds
// each MB costs across all of its processes: the client, klstore's servers, the S3 server, the
// broker. Each throughput row records it, so the report can show where the cores went.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/**
 * Who spent the CPU, in the report's order: this bench process (the client side of every
 * system, and the import engine) or a watched server.
 */
export const CPU_ROLES = {
  bench: "bench process",
  writer: "klstore writer",
  reader: "klstore reader",
  s3: "S3 server",
  kafka: "Kafka broker",
  redis: "Redis server",
} as const;
export type CpuRole = (typeof CPU_ROLES)[keyof typeof CPU_ROLES];

/** CPU-seconds by role over one run. */
export type CpuUse = ReadonlyMap<CpuRole, number>;

const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** role -> pids: a role may be several processes (the writer shards of a cluster). */
const watched = new Map<CpuRole, Set<number>>();

/** Counts `pid`'s CPU under `role` in every row measured until `unwatch`. */
export function watch(role: CpuRole, pid: number | undefined): void {
  if (pid === undefined) return;
  let pids = watched.get(role);
  if (!pids) watched.set(role, (pids = new Set()));
  pids.add(pid);
}

export function unwatch(pid: number | undefined): void {
  if (pid === undefined) return;
  for (const [role, pids] of watched) {
    pids.delete(pid);
    if (pids.size === 0) watched.delete(role);
  }
}

/** A server's pid from the environment scripts/bench.sh sets (scripts/services.sh pid NAME). */
export function servicePid(variable: string): number | undefined {
  const pid = Number(process.env[variable]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** utime + stime of a process; undefined once it has exited. */
function processSeconds(pid: number): number | undefined {
  try {
    // The command name may hold spaces: the fields after its closing parenthesis are fixed.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ").at(-1)?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

export interface CpuSnapshot {
  readonly self: NodeJS.CpuUsage;
  readonly processes: ReadonlyMap<number, number>;
}

export function cpuSnapshot(): CpuSnapshot {
  const processes = new Map<number, number>();
  for (const pids of watched.values()) {
    for (const pid of pids) {
      const seconds = processSeconds(pid);
      if (seconds !== undefined) processes.set(pid, seconds);
    }
  }
  return { self: process.cpuUsage(), processes };
}

/** CPU-seconds by role since `before` (a process that exited meanwhile counts as idle). */
export function cpuSince(before: CpuSnapshot): CpuUse {
  const self = process.cpuUsage(before.self);
  const use = new Map<CpuRole, number>([[CPU_ROLES.bench, (self.user + self.system) / 1e6]]);
  for (const [role, pids] of watched) {
    let seconds = 0;
    for (const pid of pids) {
      const start = before.processes.get(pid);
      const now = processSeconds(pid);
      if (start !== undefined && now !== undefined) seconds += now - start;
    }
    use.set(role, (use.get(role) ?? 0) + seconds);
  }
  return use;
}
