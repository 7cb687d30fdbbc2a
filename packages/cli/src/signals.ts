// Long-running commands (dev, serve, read --follow) stop on Ctrl-C or SIGTERM.

/** Resolves with the signal's name on the first SIGINT or SIGTERM. */
export function untilStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off("SIGINT", stop).off("SIGTERM", stop);
      resolve(signal);
    };
    process.on("SIGINT", stop).on("SIGTERM", stop);
  });
}

/** An AbortSignal that aborts on the first SIGINT or SIGTERM. */
export function abortOnStopSignal(): AbortSignal {
  const controller = new AbortController();
  void untilStopSignal().then(() => controller.abort());
  return controller.signal;
}
