// Reads insertions from stdin: one UTF-8 value per line (text), or one JSON object per line
// (jsonl: {"value": "...", "nonce": "123", "timestamp": 1700000000000}, nonce and timestamp
// optional; "encoding": "base64" marks a binary value, as `read --output jsonl` prints it).
// `klstore import` reads its lines with the same rules (insertionFromFields).

import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { type Insertion, InvalidArgument } from "@klstore/core";

/** An integer given as a JSON number (safe range) or a decimal string; absent or null is undefined. */
function integerField(where: string, field: string, raw: unknown): bigint | undefined {
  if (raw === undefined || raw === null) return undefined;
  if ((typeof raw === "number" && Number.isSafeInteger(raw)) || (typeof raw === "string" && /^-?\d+$/.test(raw))) {
    return BigInt(raw);
  }
  throw new InvalidArgument(
    `${where} ${field}`,
    `${JSON.stringify(raw)} is not an integer (give large ones as strings)`,
  );
}

/**
 * Node's base64 decoder skips characters outside the alphabet and stops at any "=", so bad
 * input would be stored as other bytes: only text that the decoded bytes encode back to
 * (standard alphabet, padded, as `export` and `read --output jsonl` write it) is taken.
 */
function base64Value(where: string, field: string, text: string): Buffer {
  const bytes = Buffer.from(text, "base64");
  if (bytes.toString("base64") !== text) {
    throw new InvalidArgument(`${where} ${field}`, "is not base64 (standard alphabet, padded with =)");
  }
  return bytes;
}

/** A lone surrogate has no UTF-8 form: it would be stored as U+FFFD, another value. */
function textValue(where: string, field: string, text: string): Buffer {
  if (!text.isWellFormed()) {
    throw new InvalidArgument(`${where} ${field}`, "holds a lone surrogate, which has no UTF-8 form");
  }
  return Buffer.from(text, "utf8");
}

export interface FieldNames {
  /** Field holding the value; "value" unless renamed. */
  readonly value?: string;
  /** A missing value is an empty one (import) rather than an error (append). */
  readonly valueOptional?: boolean;
}

/** The insertion a JSON object (or CSV record) describes; `where` names it in errors, e.g. "stdin line 3". */
export function insertionFromFields(obj: unknown, where: string, names: FieldNames = {}): Insertion {
  const valueField = names.value ?? "value";
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
    throw new InvalidArgument(where, `expected an object with a string ${JSON.stringify(valueField)}`);
  }
  const o = obj as Record<string, unknown>;
  const value = o[valueField] ?? (names.valueOptional ? "" : undefined);
  if (typeof value !== "string") {
    throw new InvalidArgument(where, `expected an object with a string ${JSON.stringify(valueField)}`);
  }
  const encoding = o.encoding;
  if (encoding !== undefined && encoding !== "base64" && encoding !== "utf-8") {
    throw new InvalidArgument(`${where} encoding`, `${JSON.stringify(encoding)} is not base64 or utf-8`);
  }
  return {
    value: encoding === "base64" ? base64Value(where, valueField, value) : textValue(where, valueField, value),
    nonce: integerField(where, "nonce", o.nonce),
    timestamp: integerField(where, "timestamp", o.timestamp),
  };
}

/** Parses one line of JSON text; `where` names it in errors. */
export function parseJsonLine(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidArgument(where, `not JSON (${(err as Error).message})`);
  }
}

export function parseJsonlInsertion(text: string, line: number): Insertion {
  const where = `stdin line ${line}`;
  return insertionFromFields(parseJsonLine(text, where), where);
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
