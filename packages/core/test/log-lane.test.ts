// One lane of the shared log (docs/log.md): dense segments, one PUT at a time, a restart
// fence per instance, takeover fences by others, and segments whose outcome is unknown.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StorageUnavailable } from "../src/errors.ts";
import { LogLayout } from "../src/format/log-layout.ts";
import { encodeSegment } from "../src/format/log-segment.ts";
import { findLogEnd, LaneStale, type LaneWrite, LogLane, readSegmentIndex, writeFence } from "../src/log/log-lane.ts";
import { countingStore, type ObjectStore, StorageStats } from "../src/storage/object-store.ts";
import { backends } from "./backends.ts";

const LOG = { writer: "writer-0", lane: 1 };
const clock = () => 1_700_000_000_000n;
const BY = { writer: "writer-1", lane: 0 };
/** The sequence number of a stored write (undefined for anything else). */
const seqOf = (w: LaneWrite | undefined) => (w?.kind === "stored" ? w.seq : undefined);

/** Fails one PUT: before it lands ("lost request") or after ("lost response"). */
function failingOnce(inner: ObjectStore, when: "before" | "after", matches: (key: string) => boolean): ObjectStore {
  let armed = true;
  return {
    description: inner.description,
    get: (k) => inner.get(k),
    list: (p, o) => inner.list(p, o),
    listFolders: (p) => inner.listFolders(p),
    delete: (k) => inner.delete(k),
    close: () => inner.close(),
    async put(key, body, options) {
      if (!armed || !matches(key)) return inner.put(key, body, options);
      armed = false;
      if (when === "after") await inner.put(key, body, options);
      throw new StorageUnavailable(`lost ${when === "after" ? "response" : "request"} of ${key}`);
    },
  };
}

for (const backend of backends()) {
  describe(`log lane (${backend.name})`, () => {
    it("opens after a restart fence and writes dense segments", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const lane = new LogLane({ store, prefix, log: LOG, clock });
        assert.equal(await lane.open(), 0n);
        assert.deepEqual(
          seqOf(await lane.write({ kind: "data", progress: [{ slot: 3, source: LOG, through: 1n }] })),
          1n,
        );
        assert.deepEqual(seqOf(await lane.write({ kind: "data" })), 2n);
        const layout = new LogLayout(prefix, LOG);
        assert.equal((await readSegmentIndex(store, layout, 0n)).kind, "restart-fence");
        assert.deepEqual((await readSegmentIndex(store, layout, 1n)).progress, [{ slot: 3, source: LOG, through: 1n }]);
        assert.equal(await findLogEnd(store, layout, 0n), 2n);
      } finally {
        await cleanup();
      }
    });

    it("stops an older instance of its writer: its next write meets the new instance's fence", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const old = new LogLane({ store, prefix, log: LOG, clock });
        await old.open();
        await old.write({ kind: "data" });
        const restarted = new LogLane({ store, prefix, log: LOG, clock });
        assert.equal(await restarted.open(), 2n);
        await assert.rejects(old.write({ kind: "data" }), LaneStale);
        assert.equal(seqOf(await restarted.write({ kind: "data" })), 3n);
        // An instance opening while the older one keeps writing takes the next free number.
        const third = new LogLane({ store, prefix, log: LOG, clock });
        assert.equal(await third.open(), 4n);
        await assert.rejects(restarted.write({ kind: "data" }), LaneStale);
      } finally {
        await cleanup();
      }
    });

    it("learns of a takeover fence from its next write, gives the slots up, and goes on after it", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const lane = new LogLane({ store, prefix, log: LOG, clock });
        await lane.open();
        await lane.write({ kind: "data" });
        const fenced = [{ slot: 9, by: BY, recordVersion: 4n }];
        const first = await writeFence(store, prefix, LOG, 0n, { kind: "takeover-fence", fenced, createdMillis: 1n });
        const second = await writeFence(store, prefix, LOG, 0n, {
          kind: "takeover-fence",
          fenced: [{ slot: 10, by: BY, recordVersion: 1n }],
          createdMillis: 2n,
        });
        assert.deepEqual([first, second], [2n, 3n]);
        assert.deepEqual(await lane.write({ kind: "data" }), {
          kind: "fenced",
          fenced: [...fenced, { slot: 10, by: BY, recordVersion: 1n }],
        });
        assert.equal(seqOf(await lane.write({ kind: "data" })), 4n);
      } finally {
        await cleanup();
      }
    });

    for (const when of ["before", "after"] as const) {
      it(`settles a segment whose write failed ${when} landing by writing the same bytes again`, async () => {
        const { store, prefix, cleanup } = await backend.open();
        try {
          const layout = new LogLayout(prefix, LOG);
          const flaky = failingOnce(store, when, (k) => k === layout.segmentKey(1n));
          const lane = new LogLane({ store: flaky, prefix, log: LOG, clock });
          await lane.open();
          await assert.rejects(
            lane.write({ kind: "data", progress: [{ slot: 1, source: LOG, through: 2n }] }),
            StorageUnavailable,
          );
          assert.ok(lane.hasUnresolved);
          await assert.rejects(lane.write({ kind: "data" }), /resolve/);
          assert.equal(seqOf(await lane.resolve()), 1n);
          assert.deepEqual((await readSegmentIndex(store, layout, 1n)).progress, [
            { slot: 1, source: LOG, through: 2n },
          ]);
          assert.equal(seqOf(await lane.write({ kind: "data" })), 2n);
        } finally {
          await cleanup();
        }
      });
    }

    it("settles an unresolved segment as fenced when a fence took its number meanwhile", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const layout = new LogLayout(prefix, LOG);
        const lane = new LogLane({
          store: failingOnce(store, "before", (k) => k === layout.segmentKey(1n)),
          prefix,
          log: LOG,
          clock,
        });
        await lane.open();
        await assert.rejects(lane.write({ kind: "data" }), StorageUnavailable);
        const fenced = [{ slot: 2, by: BY, recordVersion: 1n }];
        assert.equal(
          await writeFence(store, prefix, LOG, 0n, { kind: "takeover-fence", fenced, createdMillis: 1n }),
          1n,
        );
        assert.deepEqual(await lane.resolve(), { kind: "fenced", fenced });
        assert.equal(seqOf(await lane.write({ kind: "data" })), 2n);
      } finally {
        await cleanup();
      }
    });

    it("finds a long log's end with few LISTs, across holes left by deleted segments", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const layout = new LogLayout(prefix, LOG);
        const kept = Array.from({ length: 70 }, (_, i) => BigInt(i)).filter((s) => s % 7n !== 3n || s === 69n);
        await Promise.all(
          kept.map((seq) =>
            store.put(layout.segmentKey(seq), encodeSegment({ seq, createdMillis: 0n, kind: "data", log: LOG })),
          ),
        );
        for (const from of [0n, 5n, 60n, 69n]) {
          const stats = new StorageStats();
          assert.equal(await findLogEnd(countingStore(store, stats), layout, from, 4), 69n, `from ${from}`);
          assert.ok(stats.listRequests <= 2 + 2 * Math.ceil(Math.log2(70)), `${stats.listRequests} LISTs from ${from}`);
        }
        assert.equal(await findLogEnd(store, layout, 70n, 4), 69n);
        assert.equal(await findLogEnd(store, new LogLayout(prefix, { writer: "none", lane: 0 }), 0n), -1n);
      } finally {
        await cleanup();
      }
    });
  });
}
