// A small deployment of real processes from one config file: N writer shards (ports picked
// up front, since every shard needs the whole list) and one reader.

import type { Shard } from "@klstore/sharding";
import { freePort, type ServedProcess, serve, stop } from "./processes.ts";

export interface Cluster {
  readonly shards: Shard[];
  readonly writers: ServedProcess[];
  readonly reader: ServedProcess;
  /** "name=host:port,..." as the client and the CLI take it. */
  readonly shardList: string;
  stop(): Promise<void>;
}

export async function startCluster(configFile: string, writerCount: number): Promise<Cluster> {
  const ports = await Promise.all(Array.from({ length: writerCount }, () => freePort()));
  const shards = ports.map((port, i) => ({ name: `writer-${i}`, address: `127.0.0.1:${port}` }));
  const shardList = shards.map((s) => `${s.name}=${s.address}`).join(",");
  const writers = await Promise.all(
    shards.map((shard) =>
      serve("writer", configFile, [
        `writer.name=${shard.name}`,
        `writer.listen=${shard.address}`,
        `writer.shards=${shardList}`,
      ]),
    ),
  );
  const reader = await serve("reader", configFile, ["reader.listen=127.0.0.1:0"]);
  return {
    shards,
    writers,
    reader,
    shardList,
    stop: async () => {
      await Promise.all([...writers, reader].map(stop));
    },
  };
}
