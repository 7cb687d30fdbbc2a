// `klstore dev`: N writer shards and a reader in one process on a local folder store, for
// trying klstore and for developing against it. Ctrl-C or SIGTERM flushes and exits. Every
// port is checked before anything starts; if a server still fails to start, the ones that
// did are stopped and the command fails naming the port.

import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { UsageError } from "./failures.ts";
import { bindFailure, requirePortsFree, type WantedPort } from "./ports.ts";
import { untilStopSignal } from "./signals.ts";

export interface DevOptions {
  readonly data: string;
  readonly shards: number;
  readonly writerPort: number;
  readonly readerPort: number;
  readonly host: string;
}

const MAX_PORT = 65_535;

/** The ports dev takes, refused at once when they collide or run past the last port. */
function wantedPorts(options: DevOptions): WantedPort[] {
  const lastWriterPort = options.writerPort + options.shards - 1;
  if (lastWriterPort > MAX_PORT) {
    throw new UsageError(
      `--shards ${options.shards} from --writer-port ${options.writerPort} runs past port ${MAX_PORT}`,
    );
  }
  if (options.readerPort >= options.writerPort && options.readerPort <= lastWriterPort) {
    throw new UsageError(
      `--reader-port ${options.readerPort} is one of the writer shards' ports ${options.writerPort}..${lastWriterPort}: give another`,
    );
  }
  return [
    ...Array.from({ length: options.shards }, (_, i) => ({
      port: options.writerPort + i,
      owner: `writer-${i}`,
      flag: "--writer-port",
    })),
    { port: options.readerPort, owner: "reader", flag: "--reader-port" },
  ];
}

interface Running {
  readonly address: string;
  close(): Promise<void>;
}

export async function runDev(options: DevOptions, print: (line: string) => Promise<void>): Promise<void> {
  await requirePortsFree(options.host, wantedPorts(options));
  // Loaded after the check: a busy port is reported before the services' start-up cost.
  const [{ startReader }, { createLogger }, { startWriterShard }] = await Promise.all([
    import("@klstore/reader-service"),
    import("@klstore/service-runtime"),
    import("@klstore/writer-service"),
  ]);
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
  const started: Running[] = [];
  const writers: Running[] = [];
  let reader: Running;
  try {
    for (const shard of shards) {
      const writer = await startWriterShard(
        { store, name: shard.name, shards, server: { listen: shard.address }, forwardingSecret },
        logger.child({ shard: shard.name }),
      ).catch((err: unknown) => {
        throw bindFailure(err, shard.address, "--writer-port");
      });
      started.push(writer);
      writers.push(writer);
    }
    const listen = `${options.host}:${options.readerPort}`;
    reader = await startReader({ store, server: { listen } }, logger.child({ role: "reader" })).catch(
      (err: unknown) => {
        throw bindFailure(err, listen, "--reader-port");
      },
    );
    started.push(reader);
  } catch (err) {
    await Promise.allSettled(started.map((s) => s.close()));
    throw err;
  }
  for (const [i, w] of writers.entries()) await print(`writer ${shards[i]?.name} ${w.address}`);
  await print(`reader ${reader.address}`);
  await print(`store ${store}`);
  await print(
    `ready: try  ./bin/klstore --writer ${writers[0]?.address} --reader ${reader.address} keyspace create demo`,
  );

  const signal = await untilStopSignal();
  logger.info({ signal }, "stopping: flushing writers");
  await Promise.all(started.map((s) => s.close()));
  await print("stopped: everything acknowledged is durable");
}
