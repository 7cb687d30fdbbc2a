// Unary handlers as async functions: the result answers the call, a thrown error becomes
// its status (status.ts). Internal errors are logged here, once.

import { type Metadata, type ServerUnaryCall, type sendUnaryData, status } from "@grpc/grpc-js";
import type { Logger } from "./logger.ts";
import { toServiceError } from "./status.ts";

export type UnaryHandler<Req, Res> = (
  request: Req,
  metadata: Metadata,
  deadline: Date | number | undefined,
  /** The call itself, for what the arguments above do not carry (e.g. the peer's certificate). */
  call: ServerUnaryCall<Req, Res>,
) => Promise<Res>;

export function unary<Req, Res>(logger: Logger, handle: UnaryHandler<Req, Res>) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    handle(call.request, call.metadata, call.getDeadline(), call).then(
      (res) => callback(null, res),
      (err: unknown) => {
        const error = toServiceError(err);
        if (error.code === status.INTERNAL) logger.error({ err, path: call.getPath() }, "internal error");
        callback(error);
      },
    );
  };
}
