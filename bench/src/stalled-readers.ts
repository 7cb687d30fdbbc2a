// A reader's memory under readers that stop reading, alone (not part of scripts/bench.sh):
// `node bench/src/stalled-readers.ts [--streams 40,100] [--values 48] [--connections 4]
// [--window 4194304] [--set reader.key=value ...]`. Appends one key of 1 MiB values through
// a writer process, reads it once through a reader process (`klstore serve reader`), then
// opens N ReadStreams (unpacked, then packed) from clients that never read (HTTP/2 streams
// left paused, e2e/support/raw-grpc.ts) and prints the reader's RSS (/proc/PID/status) once
// it stops changing. docs/operations.md states the bound these stay within.

import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { KlstoreClient } from "@klstore/client";
import { Order, ReadStreamRequestSchema } from "@klstore/proto";
import { ensureBucket, type ServedProcess, serve, stop, writeConfig } from "../../e2e/support/processes.ts";
import { rawConnection } from "../../e2e/support/raw-grpc.ts";

const { values: args } = parseArgs({
  options: {
    streams: { type: "string", default: "40,100" },
    values: { type: "string", default: "48" },
    connections: { type: "string", default: "4" },
    window: { type: "string", default: String(4 * 1024 * 1024) },
    set: { type: "string", multiple: true, default: [] },
  },
});
const MiB = 1024 * 1024;
/** RSS counts as settled once it moved less than this over SETTLED_SAMPLES samples in a row. */
const SETTLED_MIB = 2;
const SETTLED_SAMPLES = 4;
const SAMPLE_MILLIS = 500;
const MAX_SAMPLES = 60;

function residentMiB(served: ServedProcess): number {
  const kib = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${served.child.pid}/status`, "utf8"))?.[1];
  return Number(kib) / 1024;
}

async function settledMiB(served: ServedProcess): Promise<number> {
  let previous = residentMiB(served);
  for (let stable = 0, n = 0; stable < SETTLED_SAMPLES && n < MAX_SAMPLES; n++) {
    await sleep(SAMPLE_MILLIS);
    const now = residentMiB(served);
    stable = Math.abs(now - previous) < SETTLED_MIB ? stable + 1 : 0;
    previous = now;
  }
  return previous;
}

await ensureBucket();
const config = writeConfig();
const writer = await serve("writer", config.file, ["writer.listen=127.0.0.1:0"]);
try {
  const admin = new KlstoreClient({ writers: `writer-0=${writer.address}`, reader: writer.address });
  await admin.createKeyspace("stalls");
  const value = new Uint8Array(MiB).fill(7);
  for (let i = 0; i < Number(args.values); i += 4) {
    await admin.append(
      "stalls",
      "big",
      Array.from({ length: 4 }, () => ({ value })),
    );
  }
  admin.close();
  process.stdout.write(
    `| streams | form | RSS idle (MiB) | after one read | stalled | growth |\n| ---: | --- | ---: | ---: | ---: | ---: |\n`,
  );
  for (const packed of [false, true]) {
    for (const count of args.streams.split(",").map(Number)) {
      // A fresh reader per row: RSS only grows within a process.
      const reader = await serve("reader", config.file, ["reader.listen=127.0.0.1:0", ...args.set]);
      try {
        const idle = residentMiB(reader);
        const client = new KlstoreClient({ writers: `writer-0=${writer.address}`, reader: reader.address });
        for await (const _ of client.items("stalls", "big"));
        client.close();
        const served = await settledMiB(reader);
        const links = Array.from({ length: Number(args.connections) }, () =>
          rawConnection(reader.address, Number(args.window)),
        );
        const request = create(ReadStreamRequestSchema, {
          keyspace: "stalls",
          key: "big",
          order: Order.FORWARDS,
          packed,
        });
        const bytes = toBinary(ReadStreamRequestSchema, request);
        const streams = Array.from({ length: count }, (_, i) =>
          links[i % links.length]?.serverStream("/klstore.v1.ReaderService/ReadStream", bytes),
        );
        const stalled = await settledMiB(reader);
        const form = packed ? "packed" : "unpacked";
        const cells = [idle, served, stalled, stalled - served].map((m) => m.toFixed(0));
        process.stdout.write(`| ${count} | ${form} | ${cells.join(" | ")} |\n`);
        for (const s of streams) s?.cancel();
        for (const l of links) l.close();
      } finally {
        await stop(reader);
      }
    }
  }
} finally {
  await stop(writer);
}
