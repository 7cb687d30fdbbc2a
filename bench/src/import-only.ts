// The bulk import scenario alone (the full run takes minutes): `node bench/src/import-only.ts`
// [--smoke], with the same services as scripts/bench.sh. Prints the table the report has.

import { parseArgs } from "node:util";
import { ensureBucket, writeConfig } from "../../e2e/support/processes.ts";
import { bulkImport, IMPORT_SCALE } from "./klstore/bulk-import.ts";
import { rawPut, testS3Target } from "./peers/raw-s3.ts";
import { fmt } from "./report.ts";

const { values: args } = parseArgs({ options: { smoke: { type: "boolean", default: false } } });
const scale = args.smoke ? IMPORT_SCALE.smoke : IMPORT_SCALE.full;
const s3 = testS3Target();

await ensureBucket();
const config = writeConfig();
const run = Date.now().toString(36);
const rows = await bulkImport(s3, config.file, config.prefix, run, scale);
const raw = await rawPut(s3, `${config.prefix}import-raw-${run}/`, scale.items, scale.items * scale.size);
rows.push(raw.result);
process.stdout.write(`${scale.size} B values, ${scale.keys} keys, ${fmt(scale.items)} lines\n\n`);
process.stdout.write("| system | seconds | MB/s | vs raw S3 |\n| --- | ---: | ---: | ---: |\n");
for (const r of rows) {
  const ratio = (r.megabytesPerSecond / raw.result.megabytesPerSecond) * 100;
  process.stdout.write(`| ${r.system} | ${fmt(r.seconds, 2)} | ${fmt(r.megabytesPerSecond, 1)} | ${fmt(ratio)}% |\n`);
}
