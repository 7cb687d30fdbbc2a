// A small deployment of real processes from one config file: N writer shards (ports picked
// up front, since every shard needs the whole list) and one reader.

import { after, before } from "node:test";
import type { Shard } from "@klstore/sharding";
import { ensureBucket, freePort, type ServedProcess, serve, serveAll, stop, writeConfig } from "./processes.ts";

export interface Cluster {
  readonly shards: Shard[];
  readonly writers: ServedProcess[];
  readonly reader: ServedProcess;
  /** "name=host:port,..." as the client and the CLI take it. */
  readonly shardList: string;
  stop(): Promise<void>;
}

export async function startCluster(
  configFile: string,
  writerCount: number,
  options: { metrics?: boolean; sets?: readonly string[] } = {},
): Promise<Cluster> {
  const metrics = (role: string) => (options.metrics ? [`${role}.metrics_listen=127.0.0.1:0`] : []);
  const sets = options.sets ?? [];
  const ports = await Promise.all(Array.from({ length: writerCount }, () => freePort()));
  const shards = ports.map((port, i) => ({ name: `writer-${i}`, address: `127.0.0.1:${port}` }));
  const shardList = shards.map((s) => `${s.name}=${s.address}`).join(",");
  const started = await serveAll([
    ...shards.map(
      (shard) => () =>
        serve("writer", configFile, [
          `writer.name=${shard.name}`,
          `writer.listen=${shard.address}`,
          `writer.shards=${shardList}`,
          ...metrics("writer"),
          ...sets,
        ]),
    ),
    () => serve("reader", configFile, ["reader.listen=127.0.0.1:0", ...metrics("reader"), ...sets]),
  ]);
  const writers = started.slice(0, -1);
  const reader = started.at(-1) as ServedProcess;
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

/** Starts a cluster on SeaweedFS before the suite's tests and stops it after; call inside describe(). */
export function clusterForSuite(writerCount: number, options: { metrics?: boolean } = {}): () => Cluster {
  let cluster: Cluster | undefined;
  before(async () => {
    await ensureBucket();
    cluster = await startCluster(writeConfig().file, writerCount, options);
  });
  after(() => cluster?.stop());
  return () => {
    if (!cluster) throw new Error("the cluster did not start");
    return cluster;
  };
}
