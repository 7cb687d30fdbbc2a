// The ReaderService handlers: gRPC in, the core's StoreReader out.

import { create } from "@bufbuild/protobuf";
import type { StoreReader } from "@klstore/core";
import {
  GetKeyMetadataResponseSchema,
  GetKeyspaceMetadataResponseSchema,
  type HandlersOf,
  type ReaderService,
  ReadPageResponseSchema,
  ReadStatsSchema,
} from "@klstore/proto";
import { type Logger, toKeyspaceMessage, unary } from "@klstore/service-runtime";
import type { FollowHub } from "./follow-hub.ts";
import { inRequestFields, toFilter, toItemFields, toKeyMetadataMessage, toOrder } from "./messages.ts";
import { serveReadStream } from "./read-stream.ts";
import type { ReaderMetrics } from "./reader-metrics.ts";
import type { StreamAdmission } from "./stream-admission.ts";
import type { StreamBufferPool } from "./stream-buffers.ts";
import type { AnyWatchFeed } from "./watch-feed.ts";
import { serveWatch } from "./watch-stream.ts";

type Handlers = HandlersOf<typeof ReaderService>;

export interface ReaderServiceDeps {
  readonly reader: StoreReader;
  readonly hub: FollowHub;
  readonly watchHub: AnyWatchFeed;
  readonly logger: Logger;
  readonly streamPageSize: number;
  readonly metrics: ReaderMetrics;
  readonly admission: StreamAdmission;
  readonly streamBuffers: StreamBufferPool;
  readonly streamBufferBytes: number;
  readonly streamStallMillis: number;
}

export function readerHandlers(deps: ReaderServiceDeps): Handlers {
  const { reader, logger, metrics, admission } = deps;
  return {
    getKeyspaceMetadata: unary(logger, async (request) => {
      const meta = await reader.readKeyspaceMetadata(request.keyspace);
      return create(GetKeyspaceMetadataResponseSchema, { keyspace: toKeyspaceMessage(meta.keyspace, meta) });
    }),

    getKeyMetadata: unary(logger, async (request) => {
      const meta = await reader.readKeyMetadata(request.keyspace, request.key);
      return create(GetKeyMetadataResponseSchema, { metadata: meta ? toKeyMetadataMessage(meta) : undefined });
    }),

    readPage: unary(logger, async (request) => {
      const order = toOrder(request.order);
      const page = await reader
        .readPage(request.keyspace, request.key, {
          order,
          maxSize: request.maxItems === 0 ? undefined : request.maxItems,
          filter: request.continuation ? undefined : toFilter(request.filter),
          continuation: request.continuation === "" ? undefined : request.continuation,
        })
        .catch((err: unknown) => {
          throw inRequestFields(err, "max_items");
        });
      metrics.pageServed("read_page", page.items.length);
      return create(ReadPageResponseSchema, {
        keyspace: page.keyspace,
        key: page.key,
        ...toItemFields(page.items, order, request.packed),
        continuation: page.continuation ?? "",
        stats: create(ReadStatsSchema, {
          listRequests: page.stats.listRequests,
          getRequests: page.stats.getRequests,
          bytesRead: BigInt(page.stats.bytesRead),
        }),
      });
    }),

    readStream: (call) =>
      serveReadStream(call, {
        reader,
        hub: deps.hub,
        logger,
        defaultPageSize: deps.streamPageSize,
        metrics,
        admission,
        buffers: deps.streamBuffers,
        streamBufferBytes: deps.streamBufferBytes,
        streamStallMillis: deps.streamStallMillis,
      }),

    watchKeyspace: (call) => serveWatch(call, { reader, hub: deps.watchHub, logger, metrics, admission }),
  };
}
