// One AppendSession: requests start in arrival order and are answered in that order as each
// completes; those for keys another shard owns go to it on one stream per owner
// (owner-stream.ts). Reading pauses while `sessionMaxInFlight` are unanswered and writing
// waits for `drain`, so neither side can make the server buffer without bound. A cancelled
// session starts nothing more (docs/sharding.md, "What a cancel guarantees").

import { once } from "node:events";
import { create } from "@bufbuild/protobuf";
import { type ServerDuplexStream, status } from "@grpc/grpc-js";
import {
  type AppendSessionRequest,
  type AppendSessionResponse,
  AppendSessionResponseSchema,
  MalformedRequest,
  RequestErrorSchema,
} from "@klstore/proto";
import { type Logger, malformedRequestError, toRequestError } from "@klstore/service-runtime";
import type { Shard } from "@klstore/sharding";
import { checkHasInsertions } from "./messages.ts";
import { type OwnerSessionStream, OwnerStream, type StartedRequest } from "./owner-stream.ts";
import type { WriterMetrics } from "./writer-metrics.ts";

/** Where one request of the session goes. */
export type SessionDestination = { readonly here: true } | { readonly owner: Shard; readonly via: readonly string[] };

export interface SessionRouting {
  /** Throws for a request that can go nowhere (the shards forward it in a loop). */
  destination(keyspace: string, key: string): SessionDestination;
  /** Starts a request this shard serves. */
  serveHere(request: AppendSessionRequest): StartedRequest;
  openOwnerStream(owner: Shard, via: readonly string[]): OwnerSessionStream;
}

export interface SessionDeps {
  readonly logger: Logger;
  readonly sessionMaxInFlight: number;
  readonly metrics: WriterMetrics;
}

const NOT_STARTED = create(RequestErrorSchema, {
  code: status.CANCELLED,
  message: "the session was cancelled before this request started; nothing of it is stored",
  retryable: true,
});

export function serveSession(
  call: ServerDuplexStream<AppendSessionRequest, AppendSessionResponse>,
  deps: SessionDeps,
  routing: SessionRouting,
): void {
  const answers: Promise<AppendSessionResponse>[] = [];
  // Each request starts only once the previous one is admitted (holds its place in its
  // key's order: queued here, or written to its owner's stream), so a key's requests keep
  // the stream's order and pipelined requests to a key can share a commit.
  let previous: Promise<unknown> = Promise.resolve();
  const owners = new Map<string, OwnerStream>();
  let writing = false;
  let ended = false;
  let stopped = false;

  const ownerStream = (owner: Shard, via: readonly string[]): OwnerStream => {
    let stream = owners.get(owner.name);
    // A failed stream failed its unanswered requests; later ones go on a new stream.
    if (!stream || stream.failed) {
      stream = new OwnerStream(owner, routing.openOwnerStream(owner, via));
      owners.set(owner.name, stream);
    }
    return stream;
  };

  const start = (request: AppendSessionRequest): StartedRequest => {
    // Cancelled while this request waited its turn: it is never started, nothing of it is
    // stored, and its answer settles at once (no one is left to read it).
    if (stopped) return { admitted: Promise.resolve(), answer: Promise.resolve({ error: NOT_STARTED }) };
    // Refused before it is forwarded, so an owner and a forwarder answer it alike.
    checkHasInsertions(request);
    const destination = routing.destination(request.keyspace, request.key);
    if ("here" in destination) return routing.serveHere(request);
    deps.metrics.forwarded();
    return ownerStream(destination.owner, destination.via).send(request);
  };

  // The client cancelled, its deadline passed or its connection dropped.
  const stop = () => {
    stopped = true;
    for (const stream of owners.values()) stream.cancel();
  };
  call.on("cancelled", stop);
  call.on("error", (err) => {
    deps.logger.debug({ err }, "append session ended by the client");
    stop();
  });

  call.on("data", (request: AppendSessionRequest | MalformedRequest<AppendSessionRequest>) => {
    if (request instanceof MalformedRequest) {
      // Refused in its place in the stream's order, as any other bad request is.
      answers.push(Promise.resolve(malformedAnswer(request)));
      if (answers.length >= deps.sessionMaxInFlight) call.pause();
      void writeAnswers();
      return;
    }
    deps.metrics.sessionRequestRead();
    const started = previous.then(() => start(request));
    previous = started.then((s) => s.admitted).catch(() => {});
    const answer = started
      .then((s) => s.answer)
      .then(
        (fields) => create(AppendSessionResponseSchema, { sequence: request.sequence, ...fields }),
        (err) => create(AppendSessionResponseSchema, { sequence: request.sequence, error: toRequestError(err) }),
      );
    void answer.finally(() => deps.metrics.sessionRequestSettled());
    answers.push(answer);
    if (answers.length >= deps.sessionMaxInFlight) call.pause();
    void writeAnswers();
  });
  call.on("end", () => {
    ended = true;
    // Every request is started (written to its owner's stream) once `previous` settles.
    void previous.then(() => {
      for (const stream of owners.values()) stream.finish();
    });
    void writeAnswers();
  });

  async function writeAnswers(): Promise<void> {
    if (writing) return;
    writing = true;
    try {
      while (answers.length > 0) {
        const answer = await (answers[0] as Promise<AppendSessionResponse>);
        answers.shift();
        if (call.cancelled || call.destroyed) return;
        if (!call.write(answer)) await once(call, "drain");
        if (answers.length < deps.sessionMaxInFlight) call.resume();
      }
      if (ended) call.end();
    } finally {
      writing = false;
    }
  }
}

/** The in-band answer to a request that did not decode: its sequence when the rest did, else 0. */
function malformedAnswer(request: MalformedRequest<AppendSessionRequest>): AppendSessionResponse {
  return create(AppendSessionResponseSchema, {
    sequence: request.partial?.sequence ?? 0n,
    error: toRequestError(malformedRequestError(request)),
  });
}
