// WatchKeyspace: the keyspace's changes pushed as they are committed, each message with
// the cursor that resumes right after it; the first message, sent once the cursor is
// accepted, has no changes and the starting cursor. Messages are written one at a time,
// waiting for the transport to take each (its write callback: HTTP/2 flow control holds it
// while the client does not read), so a slow watcher holds at most one message here; its
// cursor simply falls behind and catches up from storage.

import { create } from "@bufbuild/protobuf";
import type { ServerWritableStream } from "@grpc/grpc-js";
import { type KeyChange, RepeatedChangeFilter, type StoreReader } from "@klstore/core";
import {
  KeyChangeSchema,
  toUint128,
  type WatchKeyspaceRequest,
  type WatchKeyspaceResponse,
  WatchKeyspaceResponseSchema,
} from "@klstore/proto";
import type { Logger } from "@klstore/service-runtime";
import type { ReaderMetrics } from "./reader-metrics.ts";
import { runServerStream, written } from "./server-stream.ts";
import type { StreamAdmission } from "./stream-admission.ts";
import type { AnyWatchFeed } from "./watch-feed.ts";

/** With nothing to report, a message with no changes still carries the advanced cursor this often. */
export const WATCH_HEARTBEAT_MILLIS = 30_000;

export interface WatchStreamDeps {
  readonly reader: StoreReader;
  /** The change log or the shared log (watch-feed.ts). */
  readonly hub: AnyWatchFeed;
  readonly logger: Logger;
  readonly metrics: ReaderMetrics;
  readonly admission: StreamAdmission;
}

export function serveWatch(
  call: ServerWritableStream<WatchKeyspaceRequest, WatchKeyspaceResponse>,
  deps: WatchStreamDeps,
): void {
  runServerStream(call, (signal) => streamChanges(call, deps, signal), {
    logger: deps.logger,
    what: "watch stream",
    admission: deps.admission,
    count: () => deps.metrics.watching(),
  });
}

async function streamChanges(
  call: ServerWritableStream<WatchKeyspaceRequest, WatchKeyspaceResponse>,
  deps: WatchStreamDeps,
  signal: AbortSignal,
): Promise<void> {
  const { reader, hub } = deps;
  const { keyspace } = call.request;
  // A cursor this service did not issue is refused before any storage request.
  let cursor = await hub.start(keyspace, call.request.cursor);
  await reader.readKeyspaceMetadata(keyspace); // NOT_FOUND
  let lastSent = Date.now();
  const send = async (changes: readonly KeyChange[], at: unknown) => {
    const message = create(WatchKeyspaceResponseSchema, {
      changes: changes.map((c) =>
        create(KeyChangeSchema, {
          key: c.key,
          nextOffset: c.nextOffset,
          nextNonce: toUint128(c.nextNonce),
          commitTimeMillis: c.commitMillis,
        }),
      ),
      cursor: hub.encode(keyspace, at),
    });
    deps.metrics.changesServed(changes.length);
    lastSent = Date.now();
    await written(call, message, signal);
  };
  // At once: a watcher from now has a resume point before the first change arrives.
  await send([], cursor);
  const repeats = new RepeatedChangeFilter();
  while (!signal.aborted && !hub.closed) {
    const step = await hub.next(keyspace, cursor, signal);
    cursor = step.next;
    if (signal.aborted) return;
    const changes = repeats.admit(step.changes);
    if (changes.length === 0 && Date.now() - lastSent < WATCH_HEARTBEAT_MILLIS) continue;
    await send(changes, cursor);
  }
}
