// The Kafka bridge.

export * from "./bridge-config.ts";
export * from "./kafka-bridge.ts";
export * from "./record-parsers.ts";
export * from "./run-bridge.ts";
