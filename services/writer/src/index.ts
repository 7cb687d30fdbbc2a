// The klstore writer shard.

export * from "./writer-shard.ts";
