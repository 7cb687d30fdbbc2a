// The rows of an import buffered per key until a key has enough for one large object. Rows
// of a key stay in file order; a batch is a key's buffered rows taken at once.

import { RECORD_OVERHEAD_BYTES } from "../format/records.ts";
import type { Insertion } from "../writer/append-plan.ts";

/** One input line: which key it appends to, and what. */
export interface ImportRow {
  /** Line number in its file, from 1; increasing through the file. */
  readonly line: number;
  readonly key: string;
  readonly insertion: Insertion;
}

/** A key's rows committed together as one object. */
export interface KeyBatch {
  readonly key: string;
  readonly rows: ImportRow[];
  /** Bytes the rows take in a data object. */
  readonly encodedBytes: number;
  /** Bytes the rows hold in memory, for the buffer bound. */
  readonly memoryBytes: number;
}

/** JS objects around each value (row, insertion, buffer): counted so tiny values cannot blow the bound. */
const ROW_MEMORY_OVERHEAD = 160;

export function rowMemoryBytes(row: ImportRow): number {
  return row.insertion.value.byteLength + ROW_MEMORY_OVERHEAD + row.key.length;
}

interface OpenBuffer {
  rows: ImportRow[];
  encodedBytes: number;
  memoryBytes: number;
}

export class KeyBuffers {
  private readonly open = new Map<string, OpenBuffer>();
  /** Memory held by rows not yet taken as a batch. */
  memoryBytes = 0;

  private readonly batchBytes: number;
  private readonly batchItems: number;

  constructor(batchBytes: number, batchItems: number) {
    this.batchBytes = batchBytes;
    this.batchItems = batchItems;
  }

  /** Buffers a row; returns its key's batch when that is now full. */
  add(row: ImportRow): KeyBatch | undefined {
    let buffer = this.open.get(row.key);
    if (!buffer) {
      buffer = { rows: [], encodedBytes: 0, memoryBytes: 0 };
      this.open.set(row.key, buffer);
    }
    const memory = rowMemoryBytes(row);
    buffer.rows.push(row);
    buffer.encodedBytes += row.insertion.value.byteLength + RECORD_OVERHEAD_BYTES;
    buffer.memoryBytes += memory;
    this.memoryBytes += memory;
    if (buffer.encodedBytes >= this.batchBytes || buffer.rows.length >= this.batchItems) return this.take(row.key);
    return undefined;
  }

  /** Takes the largest buffers as batches until at most `keepBytes` stay buffered. */
  takeLargest(keepBytes: number): KeyBatch[] {
    const bySize = [...this.open.entries()].sort(([, a], [, b]) => b.memoryBytes - a.memoryBytes);
    const batches: KeyBatch[] = [];
    for (const [key] of bySize) {
      if (this.memoryBytes <= keepBytes) break;
      batches.push(this.take(key));
    }
    return batches;
  }

  takeAll(): KeyBatch[] {
    return [...this.open.keys()].map((key) => this.take(key));
  }

  private take(key: string): KeyBatch {
    const buffer = this.open.get(key) as OpenBuffer;
    this.open.delete(key);
    this.memoryBytes -= buffer.memoryBytes;
    return { key, ...buffer };
  }
}
