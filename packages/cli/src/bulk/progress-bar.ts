// A progress bar on stderr when it is a terminal (cli-progress), nothing otherwise: piped
// or logged output gets only the summary line.

import { Presets, SingleBar } from "cli-progress";

export interface Progress {
  /** Starts (or restarts) the bar for a phase of `total` units. */
  start(phase: string, total: number, unit: "MB" | "keys"): void;
  advance(by: number, detail?: string): void;
  stop(): void;
}

const MB = 1e6;

export function progressOnTerminal(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { start() {}, advance() {}, stop() {} };
  let bar: SingleBar | undefined;
  let scale = 1;
  return {
    start(phase, total, unit) {
      bar?.stop();
      scale = unit === "MB" ? MB : 1;
      bar = new SingleBar(
        {
          stream,
          fps: 5,
          hideCursor: true,
          format: `${phase.padEnd(9)} [{bar}] {percentage}% | {value}/{total} ${unit} | ETA {eta_formatted} | {detail}`,
          formatValue: (value, _options, type) =>
            type === "value" || type === "total" ? (value / scale).toFixed(unit === "MB" ? 1 : 0) : String(value),
        },
        Presets.shades_classic,
      );
      bar.start(total, 0, { detail: "" });
    },
    advance(by, detail) {
      bar?.increment(by, detail === undefined ? undefined : { detail });
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}
