// ReadStream: pages pushed to the client from any start position, then, with `follow`,
// new items as they are committed. One page is read only after the previous page's messages
// were taken by the transport (write() returning false means wait for 'drain'), so a slow
// client holds at most one page in this server. A packed page is sent as one message per
// stored object it spans, each a view of that object's records.

import { once } from "node:events";
import { create } from "@bufbuild/protobuf";
import type { ServerWritableStream } from "@grpc/grpc-js";
import {
  InvalidArgument,
  type Item,
  type ItemFilter,
  type ItemList,
  type IterationOrder,
  RecentObject,
  type StoreReader,
} from "@klstore/core";
import { type ReadStreamRequest, type ReadStreamResponse, ReadStreamResponseSchema } from "@klstore/proto";
import type { Logger } from "@klstore/service-runtime";
import type { FollowHub } from "./follow-hub.ts";
import { inRequestFields, storedRuns, toFilter, toItemFields, toOrder } from "./messages.ts";
import type { ReaderMetrics } from "./reader-metrics.ts";
import { runServerStream } from "./server-stream.ts";

export interface ReadStreamDeps {
  readonly reader: StoreReader;
  readonly hub: FollowHub;
  readonly logger: Logger;
  /** Items per message when the request says 0. */
  readonly defaultPageSize: number;
  readonly metrics: ReaderMetrics;
}

export function serveReadStream(
  call: ServerWritableStream<ReadStreamRequest, ReadStreamResponse>,
  deps: ReadStreamDeps,
) {
  const stream = (signal: AbortSignal) =>
    streamPages(call, deps, signal).catch((err: unknown) => {
      throw inRequestFields(err, "page_size");
    });
  runServerStream(call, stream, {
    logger: deps.logger,
    what: "read stream",
    stopCounting: call.request.follow ? deps.metrics.following() : () => {},
  });
}

async function streamPages(
  call: ServerWritableStream<ReadStreamRequest, ReadStreamResponse>,
  deps: ReadStreamDeps,
  signal: AbortSignal,
): Promise<void> {
  const { reader, hub } = deps;
  const request = call.request;
  const order: IterationOrder = toOrder(request.order);
  if (request.follow && order === "backwards") {
    throw new InvalidArgument("follow", "a backwards stream has no new items to follow; use ORDER_FORWARDS");
  }
  // Checked up front, as ReadPage checks max_items: a stream with a limit below it would
  // otherwise never ask for a page of that size, and take any page_size.
  const pageSize =
    request.pageSize === 0 ? Math.min(deps.defaultPageSize, reader.config.maxPageItems) : request.pageSize;
  reader.checkPageSize(pageSize);
  let remaining = request.limit === 0n ? undefined : request.limit;
  let continuation = request.continuation === "" ? undefined : request.continuation;
  let filter: ItemFilter | undefined = continuation ? undefined : toFilter(request.filter);
  let lastSent: bigint | undefined;
  let ahead: Promise<ItemList> | undefined;
  // Pages are smaller than objects: each object is fetched once per stream, not per page.
  const recent = new RecentObject();

  // Ends cleanly (the client resumes from its last continuation) when the server shuts down.
  while (!signal.aborted && !hub.closed) {
    // Following before anything was sent: note the key's end first, so an item committed
    // between this and the page read is either in the page or wakes the wait below.
    const endBefore =
      request.follow && lastSent === undefined
        ? ((await reader.readKeyMetadata(request.keyspace, request.key))?.nextOffset ?? 0n)
        : undefined;
    const maxSize = remaining === undefined ? pageSize : Math.min(pageSize, Number(remaining));
    const page = await (ahead ??
      reader.readPage(request.keyspace, request.key, { order, maxSize, filter, continuation, recent }));
    ahead = undefined;
    const last = page.items.at(-1);
    const left = remaining === undefined ? undefined : remaining - BigInt(page.items.length);
    if (last && page.continuation && (left === undefined || left > 0n)) {
      // Read the next page while this one is sent: fetching from storage and sending to the
      // client overlap, and the server holds at most two pages. (Only after a page with
      // items: before the first item is sent, a follower must note the key's end first.)
      const nextMax = left === undefined ? pageSize : Math.min(pageSize, Number(left));
      ahead = reader.readPage(request.keyspace, request.key, {
        order,
        maxSize: nextMax,
        continuation: page.continuation,
        recent,
      });
      ahead.catch(() => {}); // raised when awaited; dropped if the stream ends first
    }
    if (last) {
      lastSent = last.offset;
      deps.metrics.pageServed("read_stream", page.items.length);
      for (const run of request.packed ? storedRuns(page.items) : [page.items]) {
        const message = create(ReadStreamResponseSchema, {
          ...toItemFields(run, order, request.packed),
          continuation:
            reader.continuationAfter(request.keyspace, request.key, order, (run.at(-1) as Item).offset) ?? "",
        });
        if (!call.write(message)) await once(call, "drain", { signal });
      }
      if (remaining !== undefined) {
        remaining -= BigInt(page.items.length);
        if (remaining <= 0n) return;
      }
    }
    if (page.continuation) {
      continuation = page.continuation;
      filter = undefined;
      continue;
    }
    if (!request.follow) return;
    // At the end of the list: sleep until it grows past what was seen, then go on right
    // after the last item sent (or from the original start if nothing was sent yet).
    if (lastSent !== undefined) {
      continuation = reader.continuationAfter(request.keyspace, request.key, order, lastSent);
      filter = undefined;
    }
    await hub.waitForGrowth(
      request.keyspace,
      request.key,
      lastSent !== undefined ? lastSent + 1n : (endBefore ?? 0n),
      signal,
    );
  }
}
