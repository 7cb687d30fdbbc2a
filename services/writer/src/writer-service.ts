// The WriterService handlers: gRPC in, batching writer out. Requests for keys another
// shard owns are forwarded to it (forwarder.ts); everything else is served here.

import { once } from "node:events";
import { create } from "@bufbuild/protobuf";
import type { Metadata, ServerDuplexStream } from "@grpc/grpc-js";
import type { BatchingStoreWriter } from "@klstore/core";
import {
  AckMode,
  type AppendRequest,
  AppendRequestSchema,
  AppendResponseSchema,
  type AppendSessionRequest,
  type AppendSessionResponse,
  AppendSessionResponseSchema,
  CreateKeyspaceResponseSchema,
  FlushAllResponseSchema,
  FlushKeyResponseSchema,
  GetShardsResponseSchema,
  type HandlersOf,
  MalformedRequest,
  SetRetentionResponseSchema,
  TrimResponseSchema,
  type WriterService,
  WriterShardSchema,
} from "@klstore/proto";
import {
  type Logger,
  malformedRequestError,
  toKeyspaceMessage,
  toRequestError,
  toRetention,
  unary,
} from "@klstore/service-runtime";
import type { ShardRing } from "@klstore/sharding";
import { Forwarder } from "./forwarder.ts";
import {
  checkAckMode,
  checkHasInsertions,
  inRequestFields,
  type OutcomeFields,
  toCompression,
  toInsertions,
  toOutcomeFields,
} from "./messages.ts";
import type { WriterMetrics } from "./writer-metrics.ts";

type Handlers = HandlersOf<typeof WriterService>;

export interface WriterServiceDeps {
  readonly writer: BatchingStoreWriter;
  readonly ring: ShardRing;
  /** This shard's name in the ring. */
  readonly self: string;
  readonly forwarder: Forwarder;
  readonly logger: Logger;
  /** Unanswered requests on one AppendSession before the server stops reading it. */
  readonly sessionMaxInFlight: number;
  readonly metrics: WriterMetrics;
}

export function writerHandlers(deps: WriterServiceDeps): Handlers {
  const { writer, ring, self, forwarder, logger, metrics } = deps;
  const owns = (keyspace: string, key: string) => ring.ownerOf(keyspace, key).name === self;

  /**
   * Starts an append here, or at the owner. `admitted` settles once the append holds its
   * place in the key's order (here: accepted into the batching queue; forwarded: answered),
   * `outcomes` once it is durable (or [] when only acceptance was asked for). Sessions order
   * requests by admission only, so pipelined appends to a key share a commit.
   */
  function startAppend(
    request: AppendRequest,
    metadata: Metadata,
    deadline: Date | number | undefined,
  ): { admitted: Promise<unknown>; outcomes: Promise<OutcomeFields> } {
    checkAckMode(request.ackMode);
    checkHasInsertions(request);
    if (!owns(request.keyspace, request.key) && !Forwarder.wasForwarded(metadata)) {
      const owner = ring.ownerOf(request.keyspace, request.key);
      metrics.forwarded();
      // Forwarded as it came: the owner answers in the form the insertions came in.
      const outcomes = forwarder
        .append(owner, request, deadline)
        .then((r): OutcomeFields => ({ outcomes: r.outcomes, packedOutcomes: r.packedOutcomes }));
      return { admitted: outcomes, outcomes };
    }
    const insertions = toInsertions(request, writer.writer.config.maxItemsPerAppend);
    const packed = request.packedInsertions.byteLength > 0;
    const submitted = writer.submit(request.keyspace, request.key, insertions);
    const outcomes = submitted.then(async ({ outcome }) => {
      void outcome.then(
        (result) => metrics.appended(insertions, result),
        () => {},
      );
      if (request.ackMode === AckMode.ACCEPTED) {
        // Acknowledged on acceptance: a later commit failure can only be logged.
        outcome.catch((err: unknown) => logger.warn({ err, keyspace: request.keyspace }, "accepted append failed"));
        return { outcomes: [] };
      }
      return toOutcomeFields(await outcome, packed);
    });
    return {
      admitted: submitted,
      outcomes: outcomes.catch((err: unknown) => {
        throw inRequestFields(err, packed);
      }),
    };
  }

  const append = (request: AppendRequest, metadata: Metadata, deadline: Date | number | undefined) =>
    startAppend(request, metadata, deadline).outcomes;

  return {
    createKeyspace: unary(logger, async (request) => {
      const settings = await writer.createKeyspace(request.keyspace, {
        compression: toCompression(request.compression),
        retention: toRetention(request.retention),
      });
      return create(CreateKeyspaceResponseSchema, { keyspace: toKeyspaceMessage(request.keyspace, settings) });
    }),

    append: unary(logger, async (request, metadata, deadline) =>
      create(AppendResponseSchema, await append(request, metadata, deadline)),
    ),

    flushKey: unary(logger, async (request, metadata, deadline) => {
      if (!owns(request.keyspace, request.key) && !Forwarder.wasForwarded(metadata)) {
        metrics.forwarded();
        await forwarder.flushKey(ring.ownerOf(request.keyspace, request.key), request, deadline);
      } else {
        await writer.flushKey(request.keyspace, request.key);
      }
      return create(FlushKeyResponseSchema);
    }),

    trim: unary(logger, async (request, metadata, deadline) => {
      if (!owns(request.keyspace, request.key) && !Forwarder.wasForwarded(metadata)) {
        metrics.forwarded();
        return forwarder.trim(ring.ownerOf(request.keyspace, request.key), request, deadline);
      }
      const outcome = await writer.trim(request.keyspace, request.key, request.beforeOffset);
      metrics.trimmed("api", outcome);
      return create(TrimResponseSchema, { firstOffset: outcome.firstOffset });
    }),

    setRetention: unary(logger, async (request) => {
      const settings = await writer.setRetention(request.keyspace, toRetention(request.retention));
      return create(SetRetentionResponseSchema, { keyspace: toKeyspaceMessage(request.keyspace, settings) });
    }),

    flushAll: unary(logger, async () => {
      await writer.flushAll();
      return create(FlushAllResponseSchema);
    }),

    // The configured list's addresses, not this process's listen address (which may be
    // 0.0.0.0): they are what the shards themselves reach each other at.
    getShards: unary(logger, async () =>
      create(GetShardsResponseSchema, {
        shards: ring.shards.map((s) => create(WriterShardSchema, { name: s.name, address: s.address })),
        thisShard: self,
      }),
    ),

    appendSession: (call) => serveSession(call, deps, startAppend),
  };
}

/** The in-band answer to a request that did not decode: its sequence when the rest did, else 0. */
function malformedAnswer(request: MalformedRequest<AppendSessionRequest>): AppendSessionResponse {
  return create(AppendSessionResponseSchema, {
    sequence: request.partial?.sequence ?? 0n,
    error: toRequestError(malformedRequestError(request)),
  });
}

/**
 * One AppendSession: requests start in arrival order, responses go out in the same order
 * as each completes. Reading pauses while `sessionMaxInFlight` are unanswered, and writing
 * waits for `drain`, so neither side can make the server buffer without bound.
 */
function serveSession(
  call: ServerDuplexStream<AppendSessionRequest, AppendSessionResponse>,
  deps: WriterServiceDeps,
  startAppend: (
    r: AppendRequest,
    m: Metadata,
    d: Date | number | undefined,
  ) => { admitted: Promise<unknown>; outcomes: Promise<OutcomeFields> },
): void {
  const answers: Promise<AppendSessionResponse>[] = [];
  // Each request is submitted only after the previous one was admitted (or, when
  // forwarded, finished), so a key's requests reach the writer in stream order.
  let previous: Promise<unknown> = Promise.resolve();
  let writing = false;
  let ended = false;

  call.on("data", (request: AppendSessionRequest | MalformedRequest<AppendSessionRequest>) => {
    if (request instanceof MalformedRequest) {
      // Refused in its place in the stream's order, as any other bad request is.
      answers.push(Promise.resolve(malformedAnswer(request)));
      if (answers.length >= deps.sessionMaxInFlight) call.pause();
      void writeAnswers();
      return;
    }
    const started = previous.then(() =>
      startAppend(
        create(AppendRequestSchema, {
          keyspace: request.keyspace,
          key: request.key,
          insertions: request.insertions,
          packedInsertions: request.packedInsertions,
        }),
        call.metadata,
        call.getDeadline(),
      ),
    );
    // The next request starts once this one is admitted, not once it is durable: requests
    // still reach the writer in stream order, and those to one key can share a commit.
    previous = started.then((s) => s.admitted).catch(() => {});
    answers.push(
      started
        .then((s) => s.outcomes)
        .then(
          (outcomes) => create(AppendSessionResponseSchema, { sequence: request.sequence, ...outcomes }),
          (err) => create(AppendSessionResponseSchema, { sequence: request.sequence, error: toRequestError(err) }),
        ),
    );
    if (answers.length >= deps.sessionMaxInFlight) call.pause();
    void writeAnswers();
  });
  call.on("end", () => {
    ended = true;
    void writeAnswers();
  });
  call.on("error", (err) => deps.logger.debug({ err }, "append session ended by the client"));

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
