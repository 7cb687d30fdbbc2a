// The sequential-read scenario alone (the full run takes minutes): `node bench/src/read-only.ts`
// [--items N] [--rounds N], with the same services as scripts/bench.sh. Appends one key of
// 1 KiB items through a writer process, then reads it through a reader process with
// ReadStream forwards and backwards, beside raw GetObject of the same bytes; each round
// prints its rows, so runs can be compared for noise.

import { parseArgs } from "node:util";
import { KlstoreClient } from "@klstore/client";
import { startCluster } from "../../e2e/support/cluster.ts";
import { ensureBucket, writeConfig } from "../../e2e/support/processes.ts";
import { difference, storageCounters } from "./klstore/cost.ts";
import { appendSession, readStream } from "./klstore/drivers.ts";
import { rawGet, rawPut, testS3Target } from "./peers/raw-s3.ts";
import { fmt } from "./report.ts";

const { values: args } = parseArgs({
  options: { items: { type: "string", default: "30000" }, rounds: { type: "string", default: "3" } },
});
const items = Number(args.items);
const size = 1024;
const s3 = testS3Target();

await ensureBucket();
const config = writeConfig();
// No object cache: every round reads from S3, as a first read of the key does.
const cluster = await startCluster(config.file, 1, { metrics: true, sets: ["reader.object_cache_bytes=0"] });
try {
  const keyspace = `read-${Date.now().toString(36)}`;
  const admin = new KlstoreClient({ writers: cluster.shards, reader: cluster.reader.address });
  await admin.createKeyspace(keyspace);
  admin.close();
  await appendSession(cluster.shards, keyspace, 1, items, size);
  const raw = await rawPut(s3, `${config.prefix}${keyspace}-raw/`, items, items * size);
  process.stdout.write(
    `${fmt(items)} items of ${size} B in one key\n\n| round | system | MB/s | vs raw GET |\n| --- | --- | ---: | ---: |\n`,
  );
  for (let round = 1; round <= Number(args.rounds); round++) {
    const before = await storageCounters(cluster.reader.metrics as string);
    const rows = [
      await readStream(cluster.reader.address, keyspace, "key-0", items, size, "forwards"),
      await readStream(cluster.reader.address, keyspace, "key-0", items, size, "backwards"),
    ];
    const cost = difference(await storageCounters(cluster.reader.metrics as string), before);
    process.stdout.write(`reader storage requests, both reads: ${cost.get} GET, ${cost.list} LIST\n`);
    const get = await rawGet(s3, raw.keys, items, items * size);
    for (const r of [...rows, get]) {
      const ratio = (r.megabytesPerSecond / get.megabytesPerSecond) * 100;
      process.stdout.write(`| ${round} | ${r.system} | ${fmt(r.megabytesPerSecond, 1)} | ${fmt(ratio)}% |\n`);
    }
  }
} finally {
  await cluster.stop();
}
