// WatchKeyspace over the shared log (docs/log.md, "Reading"): each entry of a segment is a
// change of its keyspace; cursors are per log, sealed, and expire once a log no longer holds
// where they point. Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CursorExpired, InvalidArgument } from "../src/errors.ts";
import { LogLayout } from "../src/format/log-layout.ts";
import { decodeLogCursor, encodeLogCursor, listLogs, logCursorAtEnd, readLogChanges } from "../src/log/log-changes.ts";
import { readSegmentIndex } from "../src/log/log-lane.ts";
import { LogWriter } from "../src/log/log-writer.ts";
import { backends } from "./backends.ts";

const LOG = { logLanes: 1, logDutyCycleMillis: 0, logRetentionMillis: 0, logDeleteDelayMillis: 0 };

for (const backend of backends()) {
  describe(`watching the shared log (${backend.name})`, () => {
    it("reports every commit of the keyspace once, from a cursor at the logs' end, across writers", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const a = new LogWriter({ store, prefix, name: "writer-a", log: LOG });
        await a.open();
        await a.createKeyspace("ks");
        await a.createKeyspace("other");
        await a.appendList("ks", "before", [{ value: Buffer.from("x") }]);
        const start = await logCursorAtEnd(store, prefix, await listLogs(store, prefix));
        await a.appendList("ks", "k1", [{ value: Buffer.from("1") }, { value: Buffer.from("2") }]);
        await a.appendList("other", "k1", [{ value: Buffer.from("elsewhere") }]);
        // A writer that starts after the cursor was made: its log is read from its start.
        const b = new LogWriter({ store, prefix, name: "writer-b", log: LOG });
        await b.open();
        await b.appendList("ks", "k2", [{ value: Buffer.from("3") }]);
        const indexOf = (log: { writer: string; lane: number }, seq: bigint) =>
          readSegmentIndex(store, new LogLayout(prefix, log), seq);
        const step = await readLogChanges(store, prefix, "ks", start, await listLogs(store, prefix), indexOf);
        assert.deepEqual(step.changes.map((c) => `${c.key}:${c.nextOffset}`).sort(), ["k1:2", "k2:1"]);
        const again = await readLogChanges(store, prefix, "ks", step.next, await listLogs(store, prefix), indexOf);
        assert.deepEqual(again.changes, [], "nothing twice");
        // The cursor survives its wire form.
        const token = encodeLogCursor(prefix, "ks", step.next);
        assert.deepEqual(decodeLogCursor(prefix, "ks", token), step.next);
        // Segments deleted under a cursor (older than the log keeps) expire it.
        await a.appendList("ks", "k1", [{ value: Buffer.from("4") }]);
        await a.materializeAll();
        assert.ok((await a.collectGarbage()) > 0);
        await assert.rejects(
          readLogChanges(store, prefix, "ks", start, await listLogs(store, prefix), indexOf),
          CursorExpired,
        );
      } finally {
        await cleanup();
      }
    });
  });
}

describe("log watch cursors", () => {
  it("refuse every single-bit flip, another keyspace's, and a change-log cursor", () => {
    const cursor = {
      next: new Map([
        ["writer-0/0", 17n],
        ["writer-1/1", 4n],
      ]),
    };
    const token = encodeLogCursor("p/", "ks", cursor);
    const bytes = Buffer.from(token, "base64url");
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const flipped = Buffer.from(bytes);
      flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7));
      assert.throws(() => decodeLogCursor("p/", "ks", flipped.toString("base64url")), InvalidArgument, `bit ${bit}`);
    }
    assert.throws(() => decodeLogCursor("p/", "other", token), /another keyspace/);
    const changeLogForm = Buffer.from([2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.throws(() => decodeLogCursor("p/", "ks", changeLogForm.toString("base64url")), /version 2/);
  });
});
