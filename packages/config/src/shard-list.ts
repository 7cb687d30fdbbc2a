// The writer shard list: written out, or derived from a Kubernetes StatefulSet, whose pods
// have stable names (NAME-0 ... NAME-(N-1)) and stable DNS names through a headless Service
// (NAME-i.SERVICE[.NAMESPACE.svc.cluster.local]). The pod name is the shard's hashing identity,
// so a pod that is rescheduled elsewhere keeps its keys.

import { parseShardList, type Shard } from "@klstore/sharding";
import { ConfigError } from "./config-sources.ts";
import type { SectionReader } from "./section-reader.ts";

export interface StatefulSetShards {
  /** The StatefulSet's name: pods are NAME-0 ... NAME-(replicas-1). */
  readonly statefulset: string;
  readonly replicas: number;
  /** The headless Service that gives each pod a DNS name. */
  readonly service: string;
  readonly port: number;
  /** Appended to NAME-i.SERVICE, e.g. "klstore.svc.cluster.local"; empty relies on the DNS search path. */
  readonly dnsSuffix: string;
}

export function statefulSetShards(spec: StatefulSetShards): Shard[] {
  const suffix = spec.dnsSuffix ? `.${spec.dnsSuffix}` : "";
  return Array.from({ length: spec.replicas }, (_, i) => {
    const name = `${spec.statefulset}-${i}`;
    return { name, address: `${name}.${spec.service}${suffix}:${spec.port}` };
  });
}

/** Reads `shards`, or `statefulset` + `replicas` (+ `service`, `port`, `dns_suffix`). */
export function readShardList(section: SectionReader): Shard[] | undefined {
  const list = section.string("shards");
  const statefulset = section.string("statefulset");
  const replicas = section.integer("replicas", 1, 10_000);
  const service = section.string("service");
  const port = section.integer("port", 1, 65_535);
  const dnsSuffix = section.string("dns_suffix");
  if (list !== undefined && statefulset !== undefined) {
    throw new ConfigError(`[${section.name}] give either shards or statefulset, not both`);
  }
  if (list !== undefined) {
    try {
      return parseShardList(list);
    } catch (err) {
      throw new ConfigError(`[${section.name}] shards: ${(err as Error).message}`);
    }
  }
  if (statefulset === undefined) {
    if (replicas !== undefined || service !== undefined) {
      throw new ConfigError(`[${section.name}] replicas and service need statefulset`);
    }
    return undefined;
  }
  if (replicas === undefined) throw new ConfigError(`[${section.name}] statefulset needs replicas`);
  return statefulSetShards({
    statefulset,
    replicas,
    service: service ?? statefulset,
    port: port ?? 7401,
    dnsSuffix: dnsSuffix ?? "",
  });
}
