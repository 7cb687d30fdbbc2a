// AppendSession to a shard that owns its keys beside one to a shard that forwards them:
// `node bench/src/session-forwarding.ts [--requests N] [--keys N] [--rounds N]`, on the
// same SeaweedFS as scripts/bench.sh, with two `klstore serve writer` processes. Every
// request is one 100-byte item, so the rate is in requests, not bytes; a shard sent a
// session for keys it does not own should run it at close to the owner's rate
// (docs/sharding.md, "Forwarding").

import { once } from "node:events";
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { Client, credentials } from "@grpc/grpc-js";
import { KlstoreClient } from "@klstore/client";
import {
  AppendSessionRequestSchema,
  type AppendSessionResponse,
  CHANNEL_OPTIONS,
  callBidiStream,
  packInsertions,
  WriterService,
} from "@klstore/proto";
import { ShardRing } from "@klstore/sharding";
import { startCluster } from "../../e2e/support/cluster.ts";
import { ensureBucket, writeConfig } from "../../e2e/support/processes.ts";
import { payload } from "./measure.ts";
import { fmt } from "./report.ts";

const { values: args } = parseArgs({
  options: {
    requests: { type: "string", default: "5000" },
    keys: { type: "string", default: "20" },
    rounds: { type: "string", default: "2" },
  },
});
const requests = Number(args.requests);
const keyCount = Number(args.keys);
/** Requests in flight on the session before the driver waits for answers (the server's default window). */
const WINDOW = 1024;

/** Sends `requests` one-item requests round-robin over `keys` on one session; resolves with requests/s. */
async function sessionRate(address: string, keyspace: string, keys: readonly string[]): Promise<number> {
  const client = new Client(address, credentials.createInsecure(), CHANNEL_OPTIONS);
  const stream = callBidiStream(client, WriterService, "appendSession");
  let answered = 0;
  let failed: string | undefined;
  let windowOpened: (() => void) | undefined;
  const started = process.hrtime.bigint();
  const done = (async () => {
    for await (const response of stream as AsyncIterable<AppendSessionResponse>) {
      if (response.error) failed ??= response.error.message;
      answered++;
      windowOpened?.();
    }
  })();
  for (let i = 0; i < requests; i++) {
    while (i - answered >= WINDOW) {
      await new Promise<void>((resolve) => {
        windowOpened = resolve;
      });
      windowOpened = undefined;
    }
    const request = create(AppendSessionRequestSchema, {
      sequence: BigInt(i),
      keyspace,
      key: keys[i % keys.length] as string,
      packedInsertions: packInsertions([{ value: payload(100, i) }]),
    });
    if (!stream.write(request)) await once(stream, "drain");
  }
  stream.end();
  await done;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  client.close();
  if (failed) throw new Error(`AppendSession: ${failed}`);
  if (answered !== requests) throw new Error(`${answered} answers to ${requests} requests`);
  return requests / seconds;
}

await ensureBucket();
const config = writeConfig();
const cluster = await startCluster(config.file, 2);
try {
  const ring = new ShardRing(cluster.shards);
  const admin = new KlstoreClient({ writers: cluster.shards, reader: cluster.reader.address });
  const receiver = cluster.writers[0]?.address as string;
  process.stdout.write(
    `AppendSession of ${fmt(requests)} one-item requests over ${keyCount} keys, all sent to writer-0\n\n` +
      "| round | keys owned by | requests/s |\n| --- | --- | ---: |\n",
  );
  for (let round = 1; round <= Number(args.rounds); round++) {
    const keyspace = `forwarding-${Date.now().toString(36)}-${round}`;
    await admin.createKeyspace(keyspace);
    for (const owner of ["writer-0", "writer-1"]) {
      const keys: string[] = [];
      for (let i = 0; keys.length < keyCount; i++) {
        if (ring.ownerOf(keyspace, `k${i}`).name === owner) keys.push(`k${i}`);
      }
      const rate = await sessionRate(receiver, keyspace, keys);
      const how = owner === "writer-0" ? "writer-0 (served)" : "writer-1 (forwarded)";
      process.stdout.write(`| ${round} | ${how} | ${fmt(rate)} |\n`);
    }
  }
  admin.close();
} finally {
  await cluster.stop();
}
