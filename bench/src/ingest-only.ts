// One ingest scenario alone (the full run takes minutes): `node bench/src/ingest-only.ts`
// [--size B] [--keys N] [--items N] [--rounds N] [--set section.option=value ...], with the
// same services as scripts/bench.sh. Each round appends through AppendSession to a fresh
// keyspace of a writer process, beside raw PutObject of the same bytes in 1 MiB objects,
// and prints both, so runs and writer settings (`--set writer.…`) can be compared.

import { parseArgs } from "node:util";
import { KlstoreClient } from "@klstore/client";
import { startCluster } from "../../e2e/support/cluster.ts";
import { ensureBucket, writeConfig } from "../../e2e/support/processes.ts";
import { difference, storageCounters } from "./klstore/cost.ts";
import { appendSession } from "./klstore/drivers.ts";
import { rawPut, testS3Target } from "./peers/raw-s3.ts";
import { fmt } from "./report.ts";

const { values: args } = parseArgs({
  options: {
    size: { type: "string", default: "1024" },
    keys: { type: "string", default: "1" },
    items: { type: "string", default: "100000" },
    rounds: { type: "string", default: "3" },
    set: { type: "string", multiple: true, default: [] },
  },
});
const size = Number(args.size);
const keys = Number(args.keys);
const items = Number(args.items);
const s3 = testS3Target();

await ensureBucket();
const config = writeConfig();
const cluster = await startCluster(config.file, 1, { metrics: true, sets: args.set });
const writerMetrics = cluster.writers[0]?.metrics as string;
try {
  const admin = new KlstoreClient({ writers: cluster.shards, reader: cluster.reader.address });
  process.stdout.write(
    `${fmt(items)} items of ${size} B over ${fmt(keys)} keys${args.set.length ? `, ${args.set.join(" ")}` : ""}\n\n` +
      "| round | system | items/s | MB/s | vs raw PUT | PUT / GET / LIST / DELETE |\n| --- | --- | ---: | ---: | ---: | --- |\n",
  );
  for (let round = 1; round <= Number(args.rounds); round++) {
    const keyspace = `ingest-${Date.now().toString(36)}-${round}`;
    await admin.createKeyspace(keyspace);
    const before = await storageCounters(writerMetrics);
    const session = await appendSession(cluster.shards, keyspace, keys, items, size);
    const cost = difference(await storageCounters(writerMetrics), before);
    const raw = (await rawPut(s3, `${config.prefix}${keyspace}-raw/`, items, items * size)).result;
    const requests = {
      [session.system]: `${cost.put} / ${cost.get} / ${cost.list} / ${cost.delete}`,
      [raw.system]: `${Math.ceil(raw.bytes / 2 ** 20)} / 0 / 0 / 0`,
    };
    for (const r of [session, raw]) {
      const ratio = (r.megabytesPerSecond / raw.megabytesPerSecond) * 100;
      process.stdout.write(
        `| ${round} | ${r.system} | ${fmt(r.itemsPerSecond)} | ${fmt(r.megabytesPerSecond, 1)} | ${fmt(ratio)}% | ${requests[r.system]} |\n`,
      );
    }
  }
  admin.close();
} finally {
  await cluster.stop();
}
