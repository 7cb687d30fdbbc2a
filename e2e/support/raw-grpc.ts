// Server-streaming gRPC calls made at the HTTP/2 level, for tests of a server whose client
// stops reading. grpc-js's own client cannot stall a stream: until a read is asked for it
// keeps taking messages off the wire into memory (it pauses HTTP/2 only after pushing one
// to a reader), so the server sees a client that reads. An HTTP/2 stream paused here leaves
// the server's data unacknowledged once its window is full, as a busy or stuck client does.

import http2 from "node:http2";

/** How a call ended: its gRPC status, message and google.rpc.Status details. */
export interface RawStatus {
  readonly code: number;
  readonly details: string;
  /** The `grpc-status-details-bin` trailer, decoded from base64; empty if none. */
  readonly statusDetails: Buffer;
}

export interface RawStream {
  /** Messages received so far, each without its 5-byte frame header. */
  readonly messages: Buffer[];
  /** Resolves when the call ends, with its status. */
  readonly ended: Promise<RawStatus>;
  /** Starts (or goes on) taking messages off the wire. */
  resume(): void;
  /** Resets the stream (RST_STREAM CANCEL), as a client giving up does. */
  cancel(): void;
}

export interface RawConnection {
  /** Opens a server-streaming call that reads nothing until `resume()`. */
  serverStream(path: string, request: Uint8Array): RawStream;
  close(): void;
}

/** One HTTP/2 connection; `windowBytes` is its receive window, per stream and for the connection. */
export function rawConnection(address: string, windowBytes = 65_535): RawConnection {
  const session = http2.connect(`http://${address}`, { settings: { initialWindowSize: windowBytes } });
  session.on("error", () => {}); // a call's status says what went wrong
  session.on("connect", () => {
    if (windowBytes > 65_535) session.setLocalWindowSize(windowBytes);
  });
  return {
    serverStream(path, request) {
      const stream = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
      });
      const frame = Buffer.alloc(5 + request.byteLength);
      frame.writeUInt32BE(request.byteLength, 1);
      frame.set(request, 5);
      stream.end(frame);
      stream.pause();
      const messages: Buffer[] = [];
      let pending = Buffer.alloc(0);
      stream.on("data", (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.byteLength >= 5 && pending.byteLength >= 5 + pending.readUInt32BE(1)) {
          const length = pending.readUInt32BE(1);
          messages.push(pending.subarray(5, 5 + length));
          pending = pending.subarray(5 + length);
        }
      });
      const ended = new Promise<RawStatus>((resolve) => {
        const fromHeaders = (headers: http2.IncomingHttpHeaders): boolean => {
          const code = headers["grpc-status"];
          if (code === undefined) return false;
          const details = headers["grpc-status-details-bin"];
          resolve({
            code: Number(code),
            details: decodeURIComponent(String(headers["grpc-message"] ?? "")),
            statusDetails: Buffer.from(typeof details === "string" ? details : "", "base64"),
          });
          return true;
        };
        stream.on("response", (headers) => fromHeaders(headers)); // trailers-only: refused at once
        stream.on("trailers", (headers) => fromHeaders(headers));
        stream.on("close", () =>
          resolve({ code: 1, details: `stream closed (RST ${stream.rstCode})`, statusDetails: Buffer.alloc(0) }),
        );
        stream.on("error", () => {});
      });
      return {
        messages,
        ended,
        resume: () => stream.resume(),
        cancel: () => stream.close(http2.constants.NGHTTP2_CANCEL),
      };
    },
    close: () => session.destroy(),
  };
}
