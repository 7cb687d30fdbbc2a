// Bulk import: `klstore import` of a jsonl file of 1 KiB values spread over many keys, as a
// real process on the same S3 server as the raw-S3 ceiling; and the import engine alone,
// fed rows already in memory, to show what the storage path costs without the file's
// parsing and checking.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BulkImporter, type ImportRow, importIdHash, S3Store, StoreWriter } from "@klstore/core";
import { CLI } from "../../../e2e/support/processes.ts";
import { payload, type Throughput, throughput } from "../measure.ts";
import type { S3Target } from "../peers/raw-s3.ts";

export interface ImportScale {
  readonly keys: number;
  readonly items: number;
  readonly size: number;
}

/** 1 KiB values: 200 MB over 100 keys (2 MiB a key), or a quick 2 MB for the smoke run. */
export const IMPORT_SCALE = {
  full: { keys: 100, items: 200_000, size: 1024 },
  smoke: { keys: 10, items: 2000, size: 1024 },
} as const satisfies Record<string, ImportScale>;

/** Values printable as-is in JSON: the payload's bytes mapped onto letters. */
function value(size: number, i: number): string {
  return payload(size, i).toString("base64").slice(0, size);
}

/** Writes the jsonl file: line i appends to key i % keys, so keys interleave as in a log. */
async function writeFile(path: string, scale: ImportScale): Promise<void> {
  const out = createWriteStream(path);
  let chunk = "";
  for (let i = 0; i < scale.items; i++) {
    chunk += `{"key":"key-${i % scale.keys}","value":"${value(scale.size, i)}"}\n`;
    if (chunk.length >= 1 << 20) {
      if (!out.write(chunk)) await once(out, "drain");
      chunk = "";
    }
  }
  out.end(chunk);
  await once(out, "close");
}

/** `klstore import` run to completion; its own summary gives the seconds (process start-up excluded). */
async function cliImport(configFile: string, keyspace: string, file: string): Promise<number> {
  const child = spawn(process.execPath, [CLI, "import", keyspace, file, "--config", configFile], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const [code] = await once(child, "exit");
  if (code !== 0) throw new Error(`klstore import exited with ${code}: ${stderr}`);
  const summary = JSON.parse(stderr.trim().split("\n").at(-1) as string) as { seconds: number; items_appended: number };
  return summary.seconds;
}

function s3Store(target: S3Target, prefix: string): S3Store {
  return new S3Store({
    bucketName: target.bucket,
    objectPrefix: prefix,
    endpoint: target.endpoint,
    region: "us-east-1",
    pathStyle: true,
    useDefaultCredentials: false,
    accessKey: target.accessKey,
    secretKey: target.secretKey,
    maxAttempts: 8,
  });
}

/**
 * Both measurements on fresh keyspaces under `prefix` (the config file's object prefix).
 * Bytes are the values' bytes, as for every ingest row.
 */
export async function bulkImport(
  target: S3Target,
  configFile: string,
  prefix: string,
  run: string,
  scale: ImportScale,
): Promise<Throughput[]> {
  const dir = mkdtempSync(join(tmpdir(), "klstore-bench-import-"));
  const store = s3Store(target, prefix);
  const writer = new StoreWriter({ store, prefix });
  const bytes = scale.items * scale.size;
  try {
    const file = join(dir, "import.jsonl");
    await writeFile(file, scale);
    const cliKeyspace = `import-${run}-cli`;
    await writer.createKeyspace(cliKeyspace);
    const seconds = await cliImport(configFile, cliKeyspace, file);
    const cli: Throughput = {
      system: "klstore import (jsonl file)",
      items: scale.items,
      bytes,
      seconds,
      itemsPerSecond: scale.items / seconds,
      megabytesPerSecond: bytes / seconds / 1e6,
    };

    const engineKeyspace = `import-${run}-engine`;
    await writer.createKeyspace(engineKeyspace);
    const id = importIdHash({ keyspace: engineKeyspace, reading: { bench: run } }).digest("hex");
    // Made before the clock starts, so the row shows the storage path alone.
    const inMemory: ImportRow[] = Array.from({ length: scale.items }, (_, i) => ({
      line: i + 1,
      key: `key-${i % scale.keys}`,
      insertion: { value: payload(scale.size, i) },
    }));
    async function* rows(): AsyncGenerator<ImportRow> {
      yield* inMemory;
    }
    const engine = await throughput("klstore bulk import engine (rows in memory)", scale.items, bytes, async () => {
      const job = await new BulkImporter(writer).open(engineKeyspace, { id, name: "bench", bytes });
      await job.run(rows());
    });
    return [cli, engine];
  } finally {
    await writer.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
