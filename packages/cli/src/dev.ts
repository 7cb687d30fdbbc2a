// `klstore dev`: N writer shards and a reader in one process on a local folder store, for
// trying klstore and for developing against it. Ctrl-C or SIGTERM flushes and exits.

import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { startReader } from "@klstore/reader-service";
import { createLogger } from "@klstore/service-runtime";
import { type RunningWriterShard, startWriterShard } from "@klstore/writer-service";
import { untilStopSignal } from "./signals.ts";

export interface DevOptions {
  readonly data: string;
  readonly shards: number;
  readonly writerPort: number;
  readonly readerPort: number;
  readonly host: string;
}

export async function runDev(options: DevOptions, print: (line: string) => Promise<void>): Promise<void> {
  const dir = resolve(options.data);
  mkdirSync(dir, { recursive: true });
  const store = `file://${dir}`;
  const logger = createLogger("klstore-dev", process.env.KLSTORE_LOG_LEVEL ?? "warn");
  const shards = Array.from({ length: options.shards }, (_, i) => ({
    name: `writer-${i}`,
    address: `${options.host}:${options.writerPort + i}`,
  }));
  // Known only to this process's shards: a client that marks its call as forwarded by one
  // of them is routed like any other call (docs/sharding.md).
  const forwardingSecret = randomBytes(32).toString("base64url");
  const writers: RunningWriterShard[] = [];
  for (const shard of shards) {
    writers.push(
      await startWriterShard(
        { store, name: shard.name, shards, server: { listen: shard.address }, forwardingSecret },
        logger.child({ shard: shard.name }),
      ),
    );
  }
  const reader = await startReader(
    { store, server: { listen: `${options.host}:${options.readerPort}` } },
    logger.child({ role: "reader" }),
  );
  for (const [i, w] of writers.entries()) await print(`writer ${shards[i]?.name} ${w.address}`);
  await print(`reader ${reader.address}`);
  await print(`store ${store}`);
  await print(
    `ready: try  ./bin/klstore --writer ${writers[0]?.address} --reader ${reader.address} keyspace create demo`,
  );

  const signal = await untilStopSignal();
  logger.info({ signal }, "stopping: flushing writers");
  await Promise.all([...writers.map((w) => w.close()), reader.close()]);
  await print("stopped: everything acknowledged is durable");
}
