// Shared by every klstore gRPC process.

export * from "./grpc-server.ts";
export * from "./keyspace-messages.ts";
export * from "./logger.ts";
export * from "./metrics.ts";
export * from "./status.ts";
export * from "./unary.ts";
