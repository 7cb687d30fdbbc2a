// The CLI's own failures, told apart by exit code: a command line that is wrong (2) and a
// command that ran and failed (1). Dependency-free, so that the start-up of a command that
// fails early loads nothing more (main.ts maps every other error at the end).

/** Exit codes of every klstore command (README.md lists them). */
export const EXIT = {
  ok: 0,
  /** The command ran and failed: the store, a service or the data refused it. */
  failed: 1,
  /** The command line is wrong: an unknown command or option, a bad or missing value, flags that conflict. */
  usage: 2,
  /** A bug: an error nothing expected (printed with its stack). EX_SOFTWARE. */
  internal: 70,
  /** A config file, variable or --set is wrong (docs/operations.md). EX_CONFIG. */
  config: 78,
} as const;

/** The command line is wrong; the message says what to give instead. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The command ran and failed; the message says why in full (what, where, what to do). */
export class CommandFailed extends Error {
  override readonly name = "CommandFailed";
}
