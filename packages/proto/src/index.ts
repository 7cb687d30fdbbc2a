// The klstore API for TypeScript: messages and services generated from proto/klstore/v1
// (never edited by hand), google.rpc error details, and the grpc-js glue. The health
// service's descriptor is exported only for reflection (grpc-health-check serves it).

export * from "./gen/google/rpc/error_details_pb.ts";
export * from "./gen/google/rpc/status_pb.ts";
export { file_health_v1_health } from "./gen/health/v1/health_pb.ts";
export * from "./gen/klstore/v1/reader_pb.ts";
export * from "./gen/klstore/v1/types_pb.ts";
export * from "./gen/klstore/v1/writer_pb.ts";
export * from "./grpc.ts";
export * from "./packed-appends.ts";
export * from "./packed-items.ts";
export * from "./request-decoding.ts";
export * from "./status-details.ts";
export * from "./uint128.ts";
