// The life of a server-streaming call, shared by ReadStream and WatchKeyspace: admitted
// under the stream limits (or refused with RESOURCE_EXHAUSTED), the body runs until it
// returns or the client goes away (its signal aborts), then the call ends with OK, or with
// the body's error mapped to a gRPC status.

import type { ServerWritableStream } from "@grpc/grpc-js";
import { type Logger, toServiceError } from "@klstore/service-runtime";
import type { StreamAdmission } from "./stream-admission.ts";

export interface ServerStreamOptions {
  readonly logger: Logger;
  readonly what: string;
  readonly admission: StreamAdmission;
  /** Starts counting the stream in a gauge once admitted; returns what stops counting it. */
  readonly count: () => () => void;
}

export function runServerStream<Req, Res>(
  call: ServerWritableStream<Req, Res>,
  body: (signal: AbortSignal) => Promise<void>,
  options: ServerStreamOptions,
): void {
  let leave: () => void;
  try {
    // The peer address names the client's connection (its own port), so streams are
    // counted per connection, whichever client library opened them.
    leave = options.admission.admit(call.getPeer());
  } catch (err) {
    call.emit("error", toServiceError(err));
    return;
  }
  const stopCounting = options.count();
  const ended = () => {
    stopCounting();
    leave();
  };
  const abort = new AbortController();
  call.on("cancelled", () => abort.abort());
  call.on("close", () => abort.abort());
  body(abort.signal).then(
    () => {
      ended();
      if (!abort.signal.aborted) call.end();
    },
    (err: unknown) => {
      ended();
      if (abort.signal.aborted) return;
      const error = toServiceError(err);
      if (error.code === 13) options.logger.error({ err }, `${options.what} failed`);
      // grpc-js turns an 'error' event into the call's status (and details trailer);
      // destroy() would drop the call without any status, leaving the client waiting.
      call.emit("error", error);
    },
  );
}

/**
 * Writes `message` and resolves once the transport has taken it (grpc-js calls back when
 * HTTP/2 has sent it, which flow control holds up while the client does not read), or when
 * the client goes away: grpc-js never calls back on a cancelled call. Waiting for this
 * rather than for 'drain' keeps one message, not grpc-js's queue of 16, in the process.
 */
export function written<Res>(
  call: ServerWritableStream<unknown, Res>,
  message: Res,
  signal: AbortSignal,
): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      signal.removeEventListener("abort", done);
      resolve();
    };
    signal.addEventListener("abort", done, { once: true });
    call.write(message, done);
  });
}
