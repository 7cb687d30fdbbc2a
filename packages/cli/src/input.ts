// Reads insertions from stdin: one UTF-8 value per line (text), or one JSON object per line
// (jsonl: {"value": "...", "nonce": "123", "timestamp": 1700000000000}, nonce and timestamp
// optional; "encoding": "base64" marks a binary value, as `read --output jsonl` prints it).

import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { type Insertion, InvalidArgument } from "@klstore/core";

function integerField(line: number, field: string, raw: unknown): bigint | undefined {
  if (raw === undefined || raw === null) return undefined;
  if ((typeof raw === "number" && Number.isSafeInteger(raw)) || (typeof raw === "string" && /^-?\d+$/.test(raw))) {
    return BigInt(raw);
  }
  throw new InvalidArgument(
    `stdin line ${line} ${field}`,
    `${JSON.stringify(raw)} is not an integer (give large ones as strings)`,
  );
}

export function parseJsonlInsertion(text: string, line: number): Insertion {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgument(`stdin line ${line}`, `not JSON (${(err as Error).message})`);
  }
  if (typeof obj !== "object" || obj === null || typeof (obj as { value?: unknown }).value !== "string") {
    throw new InvalidArgument(`stdin line ${line}`, 'expected an object with a string "value"');
  }
  const o = obj as { value: string; nonce?: unknown; timestamp?: unknown; encoding?: unknown };
  if (o.encoding !== undefined && o.encoding !== "base64" && o.encoding !== "utf-8") {
    throw new InvalidArgument(`stdin line ${line} encoding`, `${JSON.stringify(o.encoding)} is not base64 or utf-8`);
  }
  return {
    value: Buffer.from(o.value, o.encoding === "base64" ? "base64" : "utf8"),
    nonce: integerField(line, "nonce", o.nonce),
    timestamp: integerField(line, "timestamp", o.timestamp),
  };
}

export async function readInsertions(input: Readable, format: "text" | "jsonl"): Promise<Insertion[]> {
  const insertions: Insertion[] = [];
  let line = 0;
  for await (const text of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
    line++;
    if (format === "text") insertions.push({ value: Buffer.from(text, "utf8") });
    else if (text.trim() !== "") insertions.push(parseJsonlInsertion(text, line));
  }
  return insertions;
}
