// Reads the google.rpc details of a klstore gRPC status (the `grpc-status-details-bin`
// trailer, docs/errors.md) into plain values: the reason, its facts, the field, the resource
// and the retry delay, for clients to act on without parsing the message text.

import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import type { ServiceError } from "@grpc/grpc-js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.ts";
import { StatusSchema } from "./gen/google/rpc/status_pb.ts";

/** The trailer grpc-js carries a google.rpc.Status in. */
export const STATUS_DETAILS_TRAILER = "grpc-status-details-bin";

export interface StatusDetails {
  /** ErrorInfo.reason, e.g. "KEYSPACE_NOT_FOUND", "TRIMMED"; undefined without an ErrorInfo. */
  readonly reason: string | undefined;
  /** ErrorInfo.domain ("klstore.dev"). */
  readonly domain: string | undefined;
  /** ErrorInfo.metadata: the reason's facts, numbers in decimal. */
  readonly metadata: Readonly<Record<string, string>>;
  /** BadRequest's field violations: which request field was refused, and why. */
  readonly fieldViolations: readonly { readonly field: string; readonly description: string }[];
  /** ResourceInfo: the keyspace ("keyspace") or storage object ("object") concerned. */
  readonly resource: { readonly type: string; readonly name: string } | undefined;
  /** RetryInfo.retry_delay in ms: present exactly when a retry may succeed. */
  readonly retryDelayMillis: number | undefined;
  /** TRIMMED: the key's first available offset, where a reader can resume (start_offset). */
  readonly firstOffset: bigint | undefined;
}

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number" && "metadata" in err;
}

/** The details of a failed call's status; undefined when it carries none (not from klstore). */
export function statusDetails(err: unknown): StatusDetails | undefined {
  if (!isServiceError(err)) return undefined;
  const bin = err.metadata?.get(STATUS_DETAILS_TRAILER)[0];
  if (!(bin instanceof Buffer)) return undefined;
  let details: ReturnType<typeof fromBinary<typeof StatusSchema>>["details"];
  try {
    details = fromBinary(StatusSchema, bin).details;
  } catch {
    return undefined; // not a google.rpc.Status: the status code and message still say what failed
  }
  const first = <T>(unpack: (d: (typeof details)[number]) => T | undefined) =>
    details.map(unpack).find((d) => d !== undefined);
  const info = first((d) => anyUnpack(d, ErrorInfoSchema));
  const badRequest = first((d) => anyUnpack(d, BadRequestSchema));
  const resource = first((d) => anyUnpack(d, ResourceInfoSchema));
  const retry = first((d) => anyUnpack(d, RetryInfoSchema));
  const metadata = { ...info?.metadata };
  const delay = retry?.retryDelay;
  return {
    reason: info?.reason,
    domain: info?.domain,
    metadata,
    fieldViolations: (badRequest?.fieldViolations ?? []).map((v) => ({ field: v.field, description: v.description })),
    resource: resource ? { type: resource.resourceType, name: resource.resourceName } : undefined,
    retryDelayMillis: delay ? Number(delay.seconds) * 1000 + delay.nanos / 1_000_000 : undefined,
    firstOffset:
      info?.reason === "TRIMMED" && metadata.first_offset !== undefined ? BigInt(metadata.first_offset) : undefined,
  };
}
