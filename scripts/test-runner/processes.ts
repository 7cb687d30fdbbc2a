// Processes of a test run, read from /proc (Linux, as every test service here): which are
// in the run's process group, which descend from a given one, and ending them, politely
// first (SIGTERM lets a `klstore serve` flush), then for certain (SIGKILL).

import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

export interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly pgrp: number;
  readonly args: string[];
}

function read(pid: number): ProcessInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z") return undefined; // exited, waiting to be reaped: nothing to end
    const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1);
    return { pid, ppid: Number(fields[1]), pgrp: Number(fields[2]), args };
  } catch {
    return undefined; // gone meanwhile
  }
}

export function allProcesses(): ProcessInfo[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .flatMap((name) => read(Number(name)) ?? []);
}

export function processesInGroup(pgrp: number): ProcessInfo[] {
  return allProcesses().filter((p) => p.pgrp === pgrp);
}

/** `pid` and everything started under it, by parent links, as of now. */
export function processTree(pid: number): ProcessInfo[] {
  const all = allProcesses();
  const tree = all.filter((p) => p.pid === pid);
  for (let i = 0; i < tree.length; i++) {
    tree.push(...all.filter((p) => p.ppid === (tree[i] as ProcessInfo).pid));
  }
  return tree;
}

/**
 * Those of `snapshot` still running. Ending a parent hands its children to init, so a tree
 * is followed by its pids, not re-read by parent links; the group check guards against a
 * pid reused meanwhile.
 */
export function stillRunning(snapshot: readonly ProcessInfo[]): ProcessInfo[] {
  return snapshot.flatMap((p) => {
    const now = read(p.pid);
    return now && now.pgrp === p.pgrp ? [now] : [];
  });
}

function signal(pids: readonly number[], name: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch {
      // already gone
    }
  }
}

/**
 * SIGTERM to each, SIGKILL to those still there after `graceMillis`; resolves once all are
 * gone. `list` re-reads which remain (a group also catches what they start meanwhile).
 */
export async function endProcesses(list: () => ProcessInfo[], graceMillis: number): Promise<void> {
  signal(
    list().map((p) => p.pid),
    "SIGTERM",
  );
  const deadline = Date.now() + graceMillis;
  while (list().length > 0 && Date.now() < deadline) await sleep(100);
  for (let round = 0; round < 50 && list().length > 0; round++) {
    signal(
      list().map((p) => p.pid),
      "SIGKILL",
    );
    await sleep(100);
  }
}
