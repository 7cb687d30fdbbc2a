// The WriterService handlers: gRPC in, batching writer out. Requests for keys another
// shard owns are forwarded to it (forwarder.ts; AppendSession: append-session.ts);
// everything else, and what a peer shard forwarded (forwarding-trust.ts), is served here.

import { create } from "@bufbuild/protobuf";
import { type AppendEngine, OwnerUnavailable } from "@klstore/core";
import {
  AckMode,
  type AppendRequest,
  AppendRequestSchema,
  AppendResponseSchema,
  CreateKeyspaceResponseSchema,
  FlushAllResponseSchema,
  FlushKeyResponseSchema,
  GetShardsResponseSchema,
  type HandlersOf,
  SetRetentionResponseSchema,
  TrimResponseSchema,
  type WriterService,
  WriterShardSchema,
} from "@klstore/proto";
import { type Logger, toKeyspaceMessage, toRetention, unary } from "@klstore/service-runtime";
import type { Shard, ShardRing } from "@klstore/sharding";
import { serveSession } from "./append-session.ts";
import type { Forwarder } from "./forwarder.ts";
import type { CallIdentity, Forwarding, ForwardingTrust } from "./forwarding-trust.ts";
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
  readonly writer: AppendEngine;
  readonly ring: ShardRing;
  /** This shard's name in the ring. */
  readonly self: string;
  readonly forwarder: Forwarder;
  readonly trust: ForwardingTrust;
  readonly logger: Logger;
  /** Unanswered requests on one AppendSession before the server stops reading it. */
  readonly sessionMaxInFlight: number;
  readonly metrics: WriterMetrics;
}

type Deadline = Date | number | undefined;

/** Where a call for a key goes: served here, or forwarded to its owner through `via`. */
type Destination = { readonly here: true } | { readonly owner: Shard; readonly via: readonly string[] };

export function writerHandlers(deps: WriterServiceDeps): Handlers {
  const { writer, ring, self, forwarder, trust, logger, metrics } = deps;

  /** What a call says about forwarding; a marker without proof is counted and logged. */
  function forwardingOf(call: CallIdentity): Forwarding {
    const forwarding = trust.classify(call);
    if (forwarding.kind === "untrusted") {
      metrics.untrustedForwarding();
      // Without proof configured every peer's call is untrusted; that is said once, at start.
      logger[trust.configured ? "warn" : "debug"](
        { via: forwarding.via },
        "call marked as forwarded without proof of coming from a peer shard: routed as a client's call",
      );
    }
    return forwarding;
  }

  /**
   * A call a peer shard forwarded is served here whatever our shard list says, so shards
   * that disagree about the list forward a call once, not in a loop. Any other call goes
   * to the key's owner by our list, a call marked as forwarded without proof included.
   * That marker only stops a loop (shards without proof that disagree): a call that
   * passed through this shard and then another comes back here to be refused. A lone name,
   * even this shard's, is never a loop (a shard never forwards to itself), so a client
   * that marks its call with any one name just has it routed.
   */
  function destinationOf(forwarding: Forwarding, keyspace: string, key: string): Destination {
    if (forwarding.kind === "trusted") return { here: true };
    const owner = ring.ownerOf(keyspace, key);
    if (owner.name === self) return { here: true };
    const via = forwarding.kind === "untrusted" ? forwarding.via : [];
    if (via.length >= 2 && via.includes(self)) {
      throw new OwnerUnavailable(
        `shards ${[...via, self].join(" -> ")} forward ${keyspace}/${key} in a loop: their shard lists disagree ` +
          "and they cannot prove to each other that they are peers ([writer] forwarding_secret)",
      );
    }
    return { owner, via: [...via, self] };
  }

  /**
   * Starts an append served here. `admitted` settles once it is accepted into the batching
   * queue (it then holds its place in the key's order), `outcomes` once it is durable (or []
   * when only acceptance was asked for).
   */
  function appendHere(request: AppendRequest): { admitted: Promise<unknown>; outcomes: Promise<OutcomeFields> } {
    const insertions = toInsertions(request, writer.config.maxItemsPerAppend);
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

  async function append(request: AppendRequest, call: CallIdentity, deadline: Deadline): Promise<OutcomeFields> {
    checkAckMode(request.ackMode);
    checkHasInsertions(request);
    const destination = destinationOf(forwardingOf(call), request.keyspace, request.key);
    if ("here" in destination) return appendHere(request).outcomes;
    metrics.forwarded();
    // Forwarded as it came: the owner answers in the form the insertions came in.
    const r = await forwarder.append(destination.owner, request, deadline, destination.via);
    return { outcomes: r.outcomes, packedOutcomes: r.packedOutcomes };
  }

  return {
    createKeyspace: unary(logger, async (request) => {
      const settings = await writer.createKeyspace(request.keyspace, {
        compression: toCompression(request.compression),
        retention: toRetention(request.retention),
      });
      return create(CreateKeyspaceResponseSchema, { keyspace: toKeyspaceMessage(request.keyspace, settings) });
    }),

    append: unary(logger, async (request, _metadata, deadline, call) =>
      create(AppendResponseSchema, await append(request, call, deadline)),
    ),

    flushKey: unary(logger, async (request, _metadata, deadline, call) => {
      const destination = destinationOf(forwardingOf(call), request.keyspace, request.key);
      if ("here" in destination) {
        await writer.flushKey(request.keyspace, request.key);
      } else {
        metrics.forwarded();
        await forwarder.flushKey(destination.owner, request, deadline, destination.via);
      }
      return create(FlushKeyResponseSchema);
    }),

    trim: unary(logger, async (request, _metadata, deadline, call) => {
      const destination = destinationOf(forwardingOf(call), request.keyspace, request.key);
      if (!("here" in destination)) {
        metrics.forwarded();
        return forwarder.trim(destination.owner, request, deadline, destination.via);
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

    appendSession: (call) => {
      const forwarding = forwardingOf(call);
      serveSession(call, deps, {
        destination: (keyspace, key) => destinationOf(forwarding, keyspace, key),
        serveHere: (request) => {
          const { admitted, outcomes } = appendHere(
            create(AppendRequestSchema, {
              keyspace: request.keyspace,
              key: request.key,
              insertions: request.insertions,
              packedInsertions: request.packedInsertions,
            }),
          );
          return { admitted, answer: outcomes };
        },
        openOwnerStream: (owner, via) => forwarder.openSession(owner, call.getDeadline(), via),
      });
    },
  };
}
