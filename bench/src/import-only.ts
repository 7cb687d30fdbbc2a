// The bulk import scenario alone (the full run takes minutes): `node bench/src/import-only.ts`
// [--smoke], with the same services as scripts/bench.sh. Prints the table the report has.

import { parseArgs } from "node:util";
import {
  ensureBucket,
  S3_ACCESS_KEY,
  S3_BUCKET,
  S3_ENDPOINT,
  S3_SECRET_KEY,
  writeConfig,
} from "../../e2e/support/processes.ts";
import { bulkImport, IMPORT_SCALE } from "./klstore/bulk-import.ts";
import { rawPut, type S3Target } from "./peers/raw-s3.ts";
import { fmt } from "./report.ts";

const { values: args } = parseArgs({ options: { smoke: { type: "boolean", default: false } } });
if (!S3_ENDPOINT) throw new Error("needs KLSTORE_TEST_S3_ENDPOINT (scripts/services.sh start s3)");
const scale = args.smoke ? IMPORT_SCALE.smoke : IMPORT_SCALE.full;
const s3: S3Target = { endpoint: S3_ENDPOINT, bucket: S3_BUCKET, accessKey: S3_ACCESS_KEY, secretKey: S3_SECRET_KEY };

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
