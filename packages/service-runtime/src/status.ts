// The one place engine errors become gRPC statuses. Each status carries a google.rpc.Status
// in the `grpc-status-details-bin` trailer with details a client can act on: ErrorInfo
// (a stable reason, and the error's facts as metadata), BadRequest (which field), RetryInfo
// (retryable, and when), ResourceInfo (which keyspace or object). docs/errors.md lists them;
// status.test.ts checks that it lists exactly what this module sends.

import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack, DurationSchema } from "@bufbuild/protobuf/wkt";
import { Metadata, type ServiceError, status as Status } from "@grpc/grpc-js";
import { InternalError, InvalidArgument, KlstoreError } from "@klstore/core";
import {
  BadRequest_FieldViolationSchema,
  BadRequestSchema,
  ErrorInfoSchema,
  type MalformedRequest,
  type RequestError,
  RequestErrorSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
  StatusSchema,
  statusDetails,
} from "@klstore/proto";

export const ERROR_DOMAIN = "klstore.dev";
/** How long a client should wait before retrying a retryable error (RetryInfo.retry_delay). */
export const RETRY_DELAY_MILLIS = 100;
/** Error properties that are not facts about the failure (an InvalidArgument's `reason` is in its message). */
const NOT_FACTS = new Set(["code", "retryable", "name", "reason"]);

const CODES: Record<KlstoreError["code"], Status> = {
  INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  NOT_FOUND: Status.NOT_FOUND,
  ALREADY_EXISTS: Status.ALREADY_EXISTS,
  RESOURCE_EXHAUSTED: Status.RESOURCE_EXHAUSTED,
  ABORTED: Status.ABORTED,
  OUT_OF_RANGE: Status.OUT_OF_RANGE,
  FAILED_PRECONDITION: Status.FAILED_PRECONDITION,
  DATA_LOSS: Status.DATA_LOSS,
  UNAVAILABLE: Status.UNAVAILABLE,
  INTERNAL: Status.INTERNAL,
};

/** A gRPC status that did not come from the engine, e.g. from a forwarded call. */
function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number" && "metadata" in err;
}

/** ErrorInfo.reason: the error class's name in UPPER_SNAKE_CASE (KeyspaceNotFound -> KEYSPACE_NOT_FOUND). */
export function errorReason(err: KlstoreError): string {
  return err.name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

/**
 * ErrorInfo.metadata: every fact the error carries (its own string, number and bigint
 * properties), keys in snake_case, numbers in decimal: a new fact on an error class reaches
 * clients without a change here.
 */
export function errorMetadata(err: KlstoreError): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(err)) {
    if (NOT_FACTS.has(name) || !["string", "number", "bigint"].includes(typeof value)) continue;
    metadata[name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase()] = String(value);
  }
  return metadata;
}

export interface StatusParts {
  readonly code: Status;
  readonly message: string;
  readonly retryable: boolean;
}

/** Code, message and retryability of any error; unknown errors are INTERNAL. */
export function statusParts(err: unknown): StatusParts {
  if (err instanceof KlstoreError) return { code: CODES[err.code], message: err.message, retryable: err.retryable };
  if (isServiceError(err)) {
    const retryable = err.code === Status.UNAVAILABLE || err.code === Status.ABORTED;
    return { code: err.code, message: err.details, retryable };
  }
  return {
    code: Status.INTERNAL,
    message: `internal error: ${(err as Error)?.message ?? String(err)}`,
    retryable: false,
  };
}

/** The error to hand grpc-js's callback or `call.destroy()`. */
export function toServiceError(err: unknown): Partial<ServiceError> {
  if (isServiceError(err)) return { code: err.code, details: err.details, metadata: err.metadata };
  const { code, message, retryable } = statusParts(err);
  // An error from outside the hierarchy is a bug: its details are InternalError's.
  const known = err instanceof KlstoreError ? err : new InternalError(message);
  const info = create(ErrorInfoSchema, {
    reason: errorReason(known),
    domain: ERROR_DOMAIN,
    metadata: errorMetadata(known),
  });
  const details = [anyPack(ErrorInfoSchema, info)];
  const facts = known as KlstoreError & { field?: string; keyspace?: string; objectKey?: string };
  if (facts.field !== undefined) {
    const violation = create(BadRequest_FieldViolationSchema, { field: facts.field, description: message });
    details.push(anyPack(BadRequestSchema, create(BadRequestSchema, { fieldViolations: [violation] })));
  }
  if (facts.objectKey !== undefined) {
    const resource = create(ResourceInfoSchema, { resourceType: "object", resourceName: facts.objectKey });
    details.push(anyPack(ResourceInfoSchema, resource));
  } else if (facts.keyspace !== undefined) {
    const resource = create(ResourceInfoSchema, { resourceType: "keyspace", resourceName: facts.keyspace });
    details.push(anyPack(ResourceInfoSchema, resource));
  }
  if (retryable) {
    const delay = create(DurationSchema, { seconds: 0n, nanos: RETRY_DELAY_MILLIS * 1_000_000 });
    details.push(anyPack(RetryInfoSchema, create(RetryInfoSchema, { retryDelay: delay })));
  }
  const metadata = new Metadata();
  const rpcStatus = create(StatusSchema, { code, message, details });
  metadata.set("grpc-status-details-bin", Buffer.from(toBinary(StatusSchema, rpcStatus)));
  return { code, details: message, metadata };
}

/**
 * A request that did not decode (request-decoding.ts), e.g. a string field that is not
 * UTF-8: the client's fault, so INVALID_ARGUMENT naming the field ("request" when the
 * bytes could not be attributed to one), never grpc-js's INTERNAL.
 */
export function malformedRequestError(request: MalformedRequest): InvalidArgument {
  return new InvalidArgument(request.field ?? "request", request.reason);
}

/** The status refusing a malformed request, for `implementation(...)` in grpc.ts. */
export function malformedRequestStatus(request: MalformedRequest): Partial<ServiceError> {
  return toServiceError(malformedRequestError(request));
}

/** The in-band error of one request on a stream (AppendSession). */
export function toRequestError(err: unknown): RequestError {
  const { code, message, retryable } = statusParts(err);
  if (isServiceError(err)) {
    // A forwarded call's status: the owner's reason and facts, as it sent them.
    const details = statusDetails(err);
    return create(RequestErrorSchema, {
      code,
      message,
      retryable,
      reason: details?.reason,
      metadata: details?.metadata,
    });
  }
  const known = err instanceof KlstoreError ? err : new InternalError(message);
  return create(RequestErrorSchema, {
    code,
    message,
    retryable,
    reason: errorReason(known),
    metadata: errorMetadata(known),
  });
}
