// Structured JSON logs (pino) on stderr, so stdout stays free for what a command prints.

import { pino } from "pino";

export type Logger = pino.Logger;

export function createLogger(name: string, level = process.env.KLSTORE_LOG_LEVEL ?? "info"): Logger {
  return pino({ name, level }, pino.destination(2));
}
