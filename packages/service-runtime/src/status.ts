// The one place engine errors become gRPC statuses. Each status carries a google.rpc.Status
// in the `grpc-status-details-bin` trailer with details a client can act on: ErrorInfo
// (a stable reason), BadRequest (which field), RetryInfo (retryable, and when),
// ResourceInfo (which keyspace or object).

import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack, DurationSchema } from "@bufbuild/protobuf/wkt";
import { Metadata, type ServiceError, status as Status } from "@grpc/grpc-js";
import { InvalidArgument, KlstoreError } from "@klstore/core";
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
} from "@klstore/proto";

export const ERROR_DOMAIN = "klstore.dev";
/** How long a client should wait before retrying a retryable error. */
const RETRY_DELAY_MILLIS = 100;

const CODES: Record<KlstoreError["code"], Status> = {
  INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  NOT_FOUND: Status.NOT_FOUND,
  ALREADY_EXISTS: Status.ALREADY_EXISTS,
  RESOURCE_EXHAUSTED: Status.RESOURCE_EXHAUSTED,
  ABORTED: Status.ABORTED,
  OUT_OF_RANGE: Status.OUT_OF_RANGE,
  DATA_LOSS: Status.DATA_LOSS,
  UNAVAILABLE: Status.UNAVAILABLE,
  INTERNAL: Status.INTERNAL,
};

/** A gRPC status that did not come from the engine, e.g. from a forwarded call. */
function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number" && "metadata" in err;
}

function toReason(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
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
  const details = [];
  if (err instanceof KlstoreError) {
    details.push(
      anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason: toReason(err.name), domain: ERROR_DOMAIN })),
    );
    const facts = err as KlstoreError & { field?: string; keyspace?: string; objectKey?: string };
    if (facts.field !== undefined) {
      const violation = create(BadRequest_FieldViolationSchema, { field: facts.field, description: message });
      details.push(anyPack(BadRequestSchema, create(BadRequestSchema, { fieldViolations: [violation] })));
    }
    if (facts.objectKey !== undefined) {
      const info = create(ResourceInfoSchema, { resourceType: "object", resourceName: facts.objectKey });
      details.push(anyPack(ResourceInfoSchema, info));
    } else if (facts.keyspace !== undefined) {
      const info = create(ResourceInfoSchema, { resourceType: "keyspace", resourceName: facts.keyspace });
      details.push(anyPack(ResourceInfoSchema, info));
    }
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
  return create(RequestErrorSchema, { code, message, retryable });
}
