// `klstore export KS [KEY...]`: every item of the keys (all keys of the keyspace when none
// are named, in byte order) as the jsonl that `klstore import` reads, one line per item:
// key, value (UTF-8 text, else base64 with "encoding":"base64"), offset, nonce (a string,
// omitted when none) and timestamp (a number, or a string beyond 2^53 so it survives
// parsers that read numbers as doubles).

import { once } from "node:events";
import { open } from "node:fs/promises";
import { InvalidArgument, type Item } from "@klstore/core";
import type { Backend } from "../backends/backend.ts";
import { progressOnTerminal } from "./progress-bar.ts";

/** Items per page read: large pages keep the requests per item low. */
const EXPORT_PAGE_ITEMS = 10_000;
/** Output is written in chunks of about this size, honouring backpressure between them. */
const WRITE_CHUNK_BYTES = 256 * 1024;

const utf8 = new TextDecoder("utf-8", { fatal: true });

function valueFields(value: Uint8Array): string {
  try {
    return `"value":${JSON.stringify(utf8.decode(value))}`;
  } catch {
    return `"value":${JSON.stringify(Buffer.from(value).toString("base64"))},"encoding":"base64"`;
  }
}

export function exportLine(key: string, item: Item): string {
  const nonce = item.nonce === undefined ? "" : `,"nonce":"${item.nonce}"`;
  const safe = item.timestamp >= BigInt(Number.MIN_SAFE_INTEGER) && item.timestamp <= BigInt(Number.MAX_SAFE_INTEGER);
  const timestamp = safe ? `${item.timestamp}` : `"${item.timestamp}"`;
  return `{"key":${JSON.stringify(key)},${valueFields(item.value)},"offset":${item.offset}${nonce},"timestamp":${timestamp}}\n`;
}

async function openOutput(path: string) {
  try {
    return (await open(path, "w")).createWriteStream();
  } catch (err) {
    throw new InvalidArgument("--output", `cannot write ${path}: ${(err as Error).message}`);
  }
}

export interface ExportOptions {
  /** Write here instead of stdout. */
  readonly output?: string | undefined;
}

async function write(out: NodeJS.WritableStream, text: string): Promise<void> {
  if (!out.write(text)) await once(out, "drain");
}

export async function runExport(
  backend: Backend,
  keyspace: string,
  named: readonly string[],
  options: ExportOptions,
): Promise<void> {
  const started = performance.now();
  // Named keys are read as given; the keyspace must still exist (an empty read would hide a typo).
  const keys = named.length > 0 ? (await backend.keyspace(keyspace), [...named]) : await backend.keys(keyspace);
  const file = options.output === undefined ? undefined : await openOutput(options.output);
  const out = file ?? process.stdout;
  const progress = progressOnTerminal();
  const totals = { keys: 0, items: 0, bytes: 0 };
  const signal = new AbortController().signal;
  try {
    progress.start("exporting", keys.length, "keys");
    for (const key of keys) {
      let pending = "";
      for await (const item of backend.items(keyspace, key, {
        order: "forwards",
        pageSize: EXPORT_PAGE_ITEMS,
        signal,
      })) {
        pending += exportLine(key, item);
        totals.items++;
        totals.bytes += item.value.byteLength;
        if (pending.length >= WRITE_CHUNK_BYTES) {
          await write(out, pending);
          pending = "";
        }
      }
      if (pending) await write(out, pending);
      totals.keys++;
      progress.advance(1, key);
    }
  } finally {
    progress.stop();
    if (file) {
      file.end();
      await once(file, "close");
    }
  }
  const seconds = (performance.now() - started) / 1000;
  process.stderr.write(
    `${JSON.stringify({ keys: totals.keys, items: totals.items, value_bytes: totals.bytes, seconds: Number(seconds.toFixed(3)) })}\n`,
  );
}
