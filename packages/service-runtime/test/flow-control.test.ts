// klstore's servers let a client send FLOW_CONTROL_WINDOW_BYTES before waiting for a window
// update, per stream and per connection (grpc-js needs our patch for this: patches/).
// Checked with a bare HTTP/2 client, which sees exactly what the server advertises.

import assert from "node:assert/strict";
import { once } from "node:events";
import { connect } from "node:http2";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { FLOW_CONTROL_WINDOW_BYTES } from "@klstore/proto";
import { createGrpcServer, listen, SERVER_DEFAULTS, shutdown } from "../src/grpc-server.ts";

describe("HTTP/2 flow control of klstore servers", () => {
  it("advertises the larger receive window for streams and for the connection", async () => {
    const { server, health } = createGrpcServer({ ...SERVER_DEFAULTS, listen: "127.0.0.1:0" }, []);
    const running = await listen(server, health, { ...SERVER_DEFAULTS, listen: "127.0.0.1:0" });
    const session = connect(`http://${running.address}`);
    try {
      const [settings] = (await once(session, "remoteSettings")) as [{ initialWindowSize?: number }];
      assert.equal(settings.initialWindowSize, FLOW_CONTROL_WINDOW_BYTES, "per-stream window");
      // The connection window arrives as a WINDOW_UPDATE right after the settings.
      const deadline = Date.now() + 30_000;
      while ((session.state.remoteWindowSize ?? 0) < FLOW_CONTROL_WINDOW_BYTES && Date.now() < deadline)
        await sleep(10);
      assert.equal(session.state.remoteWindowSize, FLOW_CONTROL_WINDOW_BYTES, "connection window");
    } finally {
      session.close();
      await shutdown(server, 1000);
    }
  });
});
