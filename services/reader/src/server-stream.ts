// The life of a server-streaming call, shared by ReadStream and WatchKeyspace: the body
// runs until it returns or the client goes away (its signal aborts), then the call ends
// with OK, or with the body's error mapped to a gRPC status.

import type { ServerWritableStream } from "@grpc/grpc-js";
import { type Logger, toServiceError } from "@klstore/service-runtime";

export function runServerStream<Req, Res>(
  call: ServerWritableStream<Req, Res>,
  body: (signal: AbortSignal) => Promise<void>,
  options: { readonly logger: Logger; readonly what: string; readonly stopCounting: () => void },
): void {
  const abort = new AbortController();
  call.on("cancelled", () => abort.abort());
  call.on("close", () => abort.abort());
  body(abort.signal).then(
    () => {
      options.stopCounting();
      if (!abort.signal.aborted) call.end();
    },
    (err: unknown) => {
      options.stopCounting();
      if (abort.signal.aborted) return;
      const error = toServiceError(err);
      if (error.code === 13) options.logger.error({ err }, `${options.what} failed`);
      // grpc-js turns an 'error' event into the call's status (and details trailer);
      // destroy() would drop the call without any status, leaving the client waiting.
      call.emit("error", error);
    },
  );
}
