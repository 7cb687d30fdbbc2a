// The CLI start-up scenario alone: `node bench/src/cli-startup.ts [--smoke] [--runs N]`.
// With KLSTORE_TEST_S3_ENDPOINT set (scripts/bench.sh's services) it adds a stat on S3.
// Prints the table the report has (docs/benchmarks.md, "CLI start-up").

import { parseArgs } from "node:util";
import { ensureBucket, S3_ACCESS_KEY, S3_BUCKET, S3_ENDPOINT, S3_SECRET_KEY } from "../../e2e/support/processes.ts";
import { CLI_STARTUP_RUNS, cliStartup, startupTable } from "./klstore/cli-startup.ts";

const { values: args } = parseArgs({
  options: { smoke: { type: "boolean", default: false }, runs: { type: "string" } },
});
const runs = args.runs ? Number(args.runs) : args.smoke ? CLI_STARTUP_RUNS.smoke : CLI_STARTUP_RUNS.full;

let s3Store: string | undefined;
if (S3_ENDPOINT) {
  await ensureBucket();
  const prefix = `bench-cli-startup-${Date.now().toString(36)}/`;
  s3Store = `s3://${S3_BUCKET}/${prefix}?endpoint=${encodeURIComponent(S3_ENDPOINT)}&path_style=true&access_key=${S3_ACCESS_KEY}&secret_key=${S3_SECRET_KEY}`;
}
process.stdout.write(`${startupTable(cliStartup({ runs, s3Store }))}\n`);
