// The client tells a mesh where an append belongs: the owning shard's name and the
// (percent-encoded) keyspace/key, on every Append and FlushKey.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { type Metadata, Server, ServerCredentials } from "@grpc/grpc-js";
import { AppendResponseSchema, FlushKeyResponseSchema, implementation, WriterService } from "@klstore/proto";
import { malformedRequestStatus } from "@klstore/service-runtime";
import { KlstoreClient } from "../src/index.ts";
import { ROUTING_KEY_HEADER, ROUTING_SHARD_HEADER } from "../src/klstore-client.ts";

describe("routing headers", () => {
  it("carry the owning shard and the key on Append and FlushKey", async () => {
    const seen: Metadata[] = [];
    const unimplemented = () => {
      throw new Error("not used");
    };
    const server = new Server();
    server.addService(
      ...implementation(
        WriterService,
        {
          append: (call, callback) => {
            seen.push(call.metadata);
            callback(null, create(AppendResponseSchema));
          },
          flushKey: (call, callback) => {
            seen.push(call.metadata);
            callback(null, create(FlushKeyResponseSchema));
          },
          createKeyspace: unimplemented,
          trim: unimplemented,
          setRetention: unimplemented,
          appendSession: unimplemented,
          flushAll: unimplemented,
          getShards: unimplemented,
        },
        malformedRequestStatus,
      ),
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    // Every shard name maps to this one server, so whichever owns the key, the call lands here.
    const client = new KlstoreClient({
      writers: [
        { name: "writer-a", address: `127.0.0.1:${port}` },
        { name: "writer-b", address: `127.0.0.1:${port}` },
      ],
      reader: `127.0.0.1:${port}`,
    });
    try {
      await client.append("ks", "user/42 ü", [{ value: "x" }]);
      await client.flushKey("ks", "user/42 ü");
      assert.equal(seen.length, 2);
      for (const metadata of seen) {
        assert.equal(metadata.get(ROUTING_SHARD_HEADER)[0], client.ring.ownerOf("ks", "user/42 ü").name);
        assert.equal(metadata.get(ROUTING_KEY_HEADER)[0], "ks/user%2F42%20%C3%BC");
      }
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});
