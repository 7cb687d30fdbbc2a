// How many server streams (ReadStream and WatchKeyspace) are open, per client connection
// and in the process: past either limit a new stream is refused with a retryable
// RESOURCE_EXHAUSTED naming the limit, and is admitted again once others end. Each open
// stream costs memory even while idle (grpc-js call state, a follower's or watcher's
// waiter), and each may hold up to stream_buffer_bytes of pages.

import { ResourceExhausted } from "@klstore/core";

export interface StreamLimits {
  /** Server streams open at once in this process. */
  readonly maxStreams: number;
  /** Server streams open at once on one client connection. */
  readonly maxStreamsPerConnection: number;
}

export class StreamAdmission {
  private readonly limits: StreamLimits;
  private readonly perConnection = new Map<string, number>();
  /** Streams open right now. */
  open = 0;
  /** Streams refused, by the limit that refused them, for metrics. */
  readonly refused = { connection: 0, process: 0 };

  constructor(limits: StreamLimits) {
    this.limits = limits;
  }

  /**
   * Admits a stream from `connection` (the peer address: one per client connection), or
   * throws ResourceExhausted. The returned function ends the stream's count; calling it
   * again does nothing.
   */
  admit(connection: string): () => void {
    const onConnection = this.perConnection.get(connection) ?? 0;
    if (onConnection >= this.limits.maxStreamsPerConnection) {
      this.refused.connection++;
      throw new ResourceExhausted(
        `too many streams on this connection: ${onConnection} open (limit [reader] ` +
          `max_streams_per_connection = ${this.limits.maxStreamsPerConnection}); ` +
          "retry once one ends, or open another connection",
      );
    }
    if (this.open >= this.limits.maxStreams) {
      this.refused.process++;
      throw new ResourceExhausted(
        `too many streams on this reader: ${this.open} open (limit [reader] max_streams = ` +
          `${this.limits.maxStreams}); retry once one ends, or on another reader`,
      );
    }
    this.perConnection.set(connection, onConnection + 1);
    this.open++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.open--;
      const left = (this.perConnection.get(connection) ?? 1) - 1;
      if (left === 0) this.perConnection.delete(connection);
      else this.perConnection.set(connection, left);
    };
  }
}
