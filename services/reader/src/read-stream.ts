// ReadStream: pages pushed to the client from any start position, then, with `follow`,
// new items as they are committed. A page is reserved (stream-buffers.ts) before it is read
// and given back once the transport has taken its messages, and a page is written only once
// the one before was taken: a stream holds at most two pages (one in the transport, one read
// ahead) of at most half of stream_buffer_bytes each, and a client that stops reading stops
// its stream's reads. A packed page is sent as one message per stored object it spans, each
// a view of that object's records.

import { create } from "@bufbuild/protobuf";
import type { ServerWritableStream } from "@grpc/grpc-js";
import {
  copyRecords,
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
import { inRequestFields, messageBytes, storedRuns, toFilter, toItemFields, toOrder } from "./messages.ts";
import type { ReaderMetrics } from "./reader-metrics.ts";
import { runServerStream } from "./server-stream.ts";
import type { StreamAdmission } from "./stream-admission.ts";
import { type PageHold, StreamBuffer, type StreamBufferPool } from "./stream-buffers.ts";

export interface ReadStreamDeps {
  readonly reader: StoreReader;
  readonly hub: FollowHub;
  readonly logger: Logger;
  /** Items per message when the request says 0. */
  readonly defaultPageSize: number;
  readonly metrics: ReaderMetrics;
  readonly admission: StreamAdmission;
  readonly buffers: StreamBufferPool;
  /** Bytes of values one stream may hold of pages the transport has not taken (two pages of half). */
  readonly streamBufferBytes: number;
  /** How long a client may take nothing before its stream lets go of the stored object it reads. */
  readonly streamStallMillis: number;
}

/**
 * A page read under a reservation, held until the transport takes it. The page is handed on
 * once (`take`): items are views of their stored object, and anything still pointing at the
 * page after it was sent (a variable of the waiting stream) would keep that object alive.
 */
interface ReservedPage {
  page: ItemList | undefined;
  readonly hold: PageHold;
}

function take(reserved: ReservedPage): ItemList {
  const page = reserved.page;
  if (!page) throw new Error("a reserved page is taken once");
  reserved.page = undefined;
  return page;
}

/** What the stream goes on with once a page is sent: no item of it. */
interface SentPage {
  readonly count: number;
  readonly lastOffset: bigint | undefined;
  readonly continuation: string | undefined;
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
    admission: deps.admission,
    count: call.request.follow ? () => deps.metrics.following() : () => () => {},
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
  // Two pages fit a stream's buffer: one being sent while the next is read.
  const pageBytes = Math.max(1, Math.floor(deps.streamBufferBytes / 2));
  deps.buffers.admit(pageBytes);
  const buffer = new StreamBuffer(deps.buffers, signal);
  let remaining = request.limit === 0n ? undefined : request.limit;
  let continuation = request.continuation === "" ? undefined : request.continuation;
  let filter: ItemFilter | undefined = continuation ? undefined : toFilter(request.filter);
  let lastSent: bigint | undefined;
  let ahead: Promise<ReservedPage> | undefined;
  // Pages are smaller than objects: each object is fetched once per stream, not per page.
  const recent = new RecentObject();

  const readReserved = async (options: {
    maxSize: number;
    filter?: ItemFilter | undefined;
    continuation?: string | undefined;
  }): Promise<ReservedPage> => {
    const hold = await buffer.reserve(pageBytes);
    try {
      const page = await reader.readPage(request.keyspace, request.key, {
        order,
        maxBytes: pageBytes,
        recent,
        ...options,
      });
      hold.resize(messageBytes(page.items));
      return { page, hold };
    } catch (err) {
      hold.release();
      throw err;
    }
  };

  /** Writes the page's messages, giving its reservation back once the transport took them all. */
  const send = (reserved: ReservedPage): SentPage => {
    const page = take(reserved);
    const { items } = page;
    const sent = { count: items.length, lastOffset: items.at(-1)?.offset, continuation: page.continuation };
    if (items.length === 0) {
      reserved.hold.release();
      return sent;
    }
    deps.metrics.pageServed("read_stream", items.length);
    const runs = request.packed ? storedRuns(items) : [items];
    let untaken = runs.length;
    const taken = () => {
      if (--untaken === 0) reserved.hold.release();
    };
    for (const run of runs) {
      const message = create(ReadStreamResponseSchema, {
        ...toItemFields(run, order, request.packed),
        continuation: reader.continuationAfter(request.keyspace, request.key, order, (run.at(-1) as Item).offset) ?? "",
      });
      call.write(message, taken);
    }
    return sent;
  };

  /**
   * The client has taken nothing for stream_stall_millis: the page waiting to be sent
   * becomes a copy and the stream lets go of the stored object it was reading (the next page
   * GETs it again, from the cache if it is still there), so a stalled stream keeps its two
   * pages' bytes and no stored object alive.
   */
  const stall = (reserved: ReservedPage): void => {
    const page = reserved.page as ItemList;
    reserved.page = { ...page, items: copyRecords(page.items) };
    recent.dropObject();
    deps.metrics.streamStalled();
  };

  /** The page written last, until the transport has taken it. */
  let sending: PageHold | undefined;
  try {
    // Ends cleanly (the client resumes from its last continuation) when the server shuts down.
    while (!signal.aborted && !hub.closed) {
      // Following before anything was sent: note the key's end first, so an item committed
      // between this and the page read is either in the page or wakes the wait below.
      const endBefore =
        request.follow && lastSent === undefined
          ? ((await reader.readKeyMetadata(request.keyspace, request.key))?.nextOffset ?? 0n)
          : undefined;
      const maxSize = remaining === undefined ? pageSize : Math.min(pageSize, Number(remaining));
      const reserved = await (ahead ?? readReserved({ maxSize, filter, continuation }));
      ahead = undefined;
      const next = (reserved.page as ItemList).continuation;
      const count = (reserved.page as ItemList).items.length;
      // One page in the transport at a time: this one waits here until the one before was
      // taken, so that it can still be let go of its stored object if the client stalls.
      if (count > 0 && sending && !(await buffer.whenReleased(sending, deps.streamStallMillis))) {
        stall(reserved);
        await buffer.whenReleased(sending);
      }
      const left = remaining === undefined ? undefined : remaining - BigInt(count);
      if (count > 0 && next && (left === undefined || left > 0n)) {
        // Read the next page while this one is sent: fetching from storage and sending to the
        // client overlap, and the stream holds two pages. (Only after a page with items:
        // before the first item is sent, a follower must note the key's end first.)
        const nextMax = left === undefined ? pageSize : Math.min(pageSize, Number(left));
        ahead = readReserved({ maxSize: nextMax, continuation: next });
        ahead.catch(() => {}); // raised when awaited; dropped if the stream ends first
      }
      if (count > 0) sending = reserved.hold;
      const sent = send(reserved);
      if (sent.lastOffset !== undefined) lastSent = sent.lastOffset;
      if (remaining !== undefined && sent.count > 0) {
        remaining -= BigInt(sent.count);
        if (remaining <= 0n) return;
      }
      if (sent.continuation) {
        continuation = sent.continuation;
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
  } finally {
    // A page read ahead and never sent gives its bytes back; the pages the transport holds
    // stay counted until it has taken them (or the client went away), so the bound holds
    // while the call's last messages and status wait behind a client that does not read.
    buffer.stopReserving();
    const unsent = await ahead?.catch(() => undefined);
    if (unsent) {
      unsent.page = undefined;
      unsent.hold.release();
    }
    await buffer.untilEmpty();
    buffer.close();
  }
}
