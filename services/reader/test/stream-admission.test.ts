import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StreamAdmission } from "../src/stream-admission.ts";

describe("stream admission", () => {
  it("refuses past max_streams_per_connection on that connection only, and admits again once one ends", () => {
    const admission = new StreamAdmission({ maxStreams: 10, maxStreamsPerConnection: 2 });
    const first = admission.admit("127.0.0.1:1000");
    admission.admit("127.0.0.1:1000");
    assert.throws(() => admission.admit("127.0.0.1:1000"), {
      code: "RESOURCE_EXHAUSTED",
      retryable: true,
      message: /2 open \(limit \[reader\] max_streams_per_connection = 2\)/,
    });
    admission.admit("127.0.0.1:1001");
    first();
    first(); // ending twice gives back one place
    admission.admit("127.0.0.1:1000");
    assert.throws(() => admission.admit("127.0.0.1:1000"), /max_streams_per_connection/);
    assert.equal(admission.open, 3);
    assert.deepEqual(admission.refused, { connection: 2, process: 0 });
  });

  it("refuses past max_streams across connections, and admits again once one ends", () => {
    const admission = new StreamAdmission({ maxStreams: 3, maxStreamsPerConnection: 100 });
    const leave = [1, 2, 3].map((port) => admission.admit(`127.0.0.1:${port}`));
    assert.throws(() => admission.admit("127.0.0.1:4"), {
      code: "RESOURCE_EXHAUSTED",
      message: /3 open \(limit \[reader\] max_streams = 3\)/,
    });
    leave[1]?.();
    admission.admit("127.0.0.1:4");
    assert.equal(admission.open, 3);
    assert.deepEqual(admission.refused, { connection: 0, process: 1 });
  });
});
