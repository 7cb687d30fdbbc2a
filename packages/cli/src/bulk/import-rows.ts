// The rows of an import file, streamed: jsonl (one object per line: key, value, nonce,
// timestamp, encoding; an "offset" is ignored, the target assigns offsets) or CSV with a
// header row (a key column; value, nonce, timestamp, encoding optional). Every chunk read is
// shown to `onChunk` first (the import id hashes it, the progress bar counts it).

import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { type ImportRow, InvalidArgument } from "@klstore/core";
import { parse as parseCsv } from "csv-parse";
import { insertionFromFields, parseJsonLine } from "../input.ts";

export type ImportFormat = "jsonl" | "csv";

export interface RowReading {
  readonly format: ImportFormat;
  /** Field (jsonl) or column (csv) holding the key. */
  readonly keyField: string;
  /** Field (jsonl) or column (csv) holding the value. */
  readonly valueField: string;
}

/** Read size: large reads keep a fast disk from being the bottleneck. */
const READ_CHUNK_BYTES = 1024 * 1024;

/** The file as a stream whose every chunk `onChunk` sees first (a listener, not a copy). */
function fileStream(path: string, onChunk: (chunk: Buffer) => void): Readable {
  const stream = createReadStream(path, { highWaterMark: READ_CHUNK_BYTES });
  stream.on("data", (chunk) => onChunk(chunk as Buffer));
  return stream;
}

function keyOf(fields: Record<string, unknown>, keyField: string, where: string): string {
  const key = fields[keyField];
  if (typeof key !== "string") throw new InvalidArgument(where, `expected a string ${JSON.stringify(keyField)}`);
  return key;
}

async function* jsonlRows(
  path: string,
  reading: RowReading,
  onChunk: (chunk: Buffer) => void,
): AsyncGenerator<ImportRow> {
  const input = fileStream(path, onChunk);
  const names = { value: reading.valueField, valueOptional: true };
  let line = 0;
  for await (const text of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
    line++;
    if (text.trim() === "") continue;
    const where = `${path} line ${line}`;
    const obj = parseJsonLine(text, where);
    const insertion = insertionFromFields(obj, where, names);
    yield { line, key: keyOf(obj as Record<string, unknown>, reading.keyField, where), insertion };
  }
}

async function* csvRows(
  path: string,
  reading: RowReading,
  onChunk: (chunk: Buffer) => void,
): AsyncGenerator<ImportRow> {
  const parser = fileStream(path, onChunk).pipe(
    parseCsv({
      bom: true,
      info: true,
      skip_empty_lines: true,
      columns: (header: string[]) => {
        if (!header.includes(reading.keyField)) {
          throw new InvalidArgument(
            `${path} line 1`,
            `the header has no ${JSON.stringify(reading.keyField)} column (columns: ${header.join(", ")}; see --key-column)`,
          );
        }
        const repeated = header.find((name, i) => header.indexOf(name) !== i);
        if (repeated !== undefined) {
          // csv-parse would keep the last of them: which one holds the data is anyone's guess.
          throw new InvalidArgument(`${path} line 1`, `the header names ${JSON.stringify(repeated)} twice`);
        }
        return header;
      },
    }),
  );
  const names = { value: reading.valueField, valueOptional: true };
  try {
    for await (const { record, info } of parser as AsyncIterable<{
      record: Record<string, string>;
      info: { lines: number };
    }>) {
      const where = `${path} line ${info.lines}`;
      // An empty cell is an absent field (no nonce, no timestamp), except the value: "".
      const fields: Record<string, string> = {};
      for (const [column, cell] of Object.entries(record))
        if (cell !== "" || column === reading.valueField) fields[column] = cell;
      yield {
        line: info.lines,
        key: keyOf(fields, reading.keyField, where),
        insertion: insertionFromFields(fields, where, names),
      };
    }
  } catch (err) {
    if (err instanceof InvalidArgument) throw err;
    // csv-parse's own errors (unclosed quote, wrong column count) name the line.
    const e = err as Error & { lines?: number; code?: string };
    if (e.code?.startsWith("CSV_")) throw new InvalidArgument(`${path} line ${e.lines ?? "?"}`, e.message);
    throw err;
  }
}

/** The rows of one file, in file order. Errors name the file and line. */
export function readRows(
  path: string,
  reading: RowReading,
  onChunk: (chunk: Buffer) => void,
): AsyncGenerator<ImportRow> {
  return reading.format === "csv" ? csvRows(path, reading, onChunk) : jsonlRows(path, reading, onChunk);
}
