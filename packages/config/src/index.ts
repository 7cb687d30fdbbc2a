// Public surface of @klstore/config.

export * from "./config-sources.ts";
export * from "./klstore-config.ts";
export { SectionReader } from "./section-reader.ts";
export { readShardList, type StatefulSetShards, statefulSetShards } from "./shard-list.ts";
