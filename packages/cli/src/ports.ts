// `klstore dev`'s ports, checked before anything starts, so that a busy one is named with the
// flag that moves it at once, instead of as a bind error after the other servers started.

import { createServer } from "node:net";
import { CommandFailed } from "./failures.ts";

export interface WantedPort {
  readonly port: number;
  /** Whose port it is, e.g. "writer-0" or "reader". */
  readonly owner: string;
  /** The flag that chooses it. */
  readonly flag: string;
}

/** Undefined when `port` can be bound on `host` now, else the system's refusal. */
function tryListen(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", (err: NodeJS.ErrnoException) => resolve(err));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** Why a port could not be bound, and what to do about it, for a message of one line. */
function advice(code: string | undefined, suspect = "another process"): string {
  switch (code) {
    case "EADDRINUSE":
      return `already in use (by ${suspect}?): stop it, or choose`;
    case "EACCES":
      return "not open to this user (ports below 1024 need privileges): choose";
    default:
      return `not available (${code ?? "unknown error"}): choose`;
  }
}

/** Rejects with one line naming every port of `wanted` that cannot be bound on `host`. */
export async function requirePortsFree(host: string, wanted: readonly WantedPort[]): Promise<void> {
  const refusals = await Promise.all(wanted.map((w) => tryListen(host, w.port)));
  if (refusals.some((r) => r?.code === "EADDRNOTAVAIL" || r?.code === "ENOTFOUND")) {
    throw new CommandFailed(`cannot listen on ${host}: not an address of this machine; give another with --host`);
  }
  const refused = wanted.filter((_, i) => refusals[i] !== undefined);
  const first = refused[0];
  if (first === undefined) return;
  const code = refusals.find((r) => r !== undefined)?.code;
  const flags = [...new Set(refused.map((w) => w.flag))].join(" or ");
  const ports = refused.map((w) => `${w.port} (${w.owner})`).join(", ");
  throw new CommandFailed(
    `${refused.length === 1 ? "port" : "ports"} ${ports} on ${host} ${refused.length === 1 ? "is" : "are"} ${advice(code, "another klstore dev")} ${refused.length === 1 ? "another" : "others"} with ${flags}`,
  );
}

/** One line for a server that failed to bind after the check (another process was quicker). */
export function bindFailure(err: unknown, address: string, flag: string): unknown {
  const message = (err as Error).message ?? "";
  const code = /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL)\b/.exec(message)?.[1];
  if (code === undefined) return err;
  return new CommandFailed(`cannot listen on ${address}: ${advice(code)} another with ${flag}`, { cause: err });
}
