// Slot records and takeovers (docs/log.md, "Ownership"): two lanes taking one slot from each
// other in a loop, each takeover fencing the other; every entry a lane stored is found in
// the ranges of the slot's newest record, in order, and no entry of a fenced write is.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { EntryInput, LogId } from "../src/format/log-segment.ts";
import { LogLane } from "../src/log/log-lane.ts";
import { decodeSlotRecord, encodeSlotRecord, rangesOf, readSlotRecord, slotOf } from "../src/log/slot-records.ts";
import { slotEntries, takeSlots } from "../src/log/takeover.ts";
import { backends } from "./backends.ts";

const clock = () => 1_700_000_000_000n;

function entryOf(slot: number, key: string, offset: bigint, value: string): EntryInput {
  return {
    slot,
    keyspace: "ks",
    key,
    name: {
      firstOffset: offset,
      lastOffset: offset,
      minTimestamp: 1n,
      maxTimestamp: 1n,
      firstNonce: 0n,
      nextNonce: 0n,
      priorStartOffset: 0n,
    },
    records: [{ offset, timestamp: 1n, nonce: undefined, value: Buffer.from(value) }],
  };
}

for (const backend of backends()) {
  describe(`slot takeover (${backend.name})`, () => {
    it("two lanes taking one slot from each other in a loop: every stored entry in the record's ranges, no fenced one", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const ids: LogId[] = [
          { writer: "writer-a", lane: 0 },
          { writer: "writer-b", lane: 0 },
        ];
        const lanes = ids.map((log) => new LogLane({ store, prefix, log, clock }));
        for (const lane of lanes) await lane.open();
        const take = (lane: LogLane) =>
          takeSlots({ store, prefix, by: lane.log, nextSeq: () => lane.nextSeq, clock }, [5]);
        const stored: string[] = [];
        let offset = 0n;
        let owner = lanes[0] as LogLane;
        assert.deepEqual((await take(owner)).contended, []);
        for (let round = 0; round < 8; round++) {
          // The owner writes; then the other lane takes the slot; the old owner's next write fails.
          for (let i = 0; i < 2; i++) {
            const value = `r${round}-${i}`;
            const written = await owner.write({ kind: "data", entries: [entryOf(5, "k", offset, value)] });
            assert.equal(written.kind, "stored");
            stored.push(value);
            offset++;
          }
          const taker = lanes[round % 2 === 0 ? 1 : 0] as LogLane;
          const { taken, contended } = await take(taker);
          assert.deepEqual(contended, []);
          assert.equal(taken[0]?.version, BigInt(round + 1));
          const refused = await owner.write({ kind: "data", entries: [entryOf(5, "k", offset, "fenced")] });
          assert.deepEqual(refused.kind === "fenced" && refused.fenced.map((f) => f.slot), [5]);
          owner = taker;
        }
        const record = await readSlotRecord(store, prefix, 5);
        assert.ok(record);
        assert.equal(record.version, 8n);
        assert.equal(record.previous.length, 8);
        const found = await slotEntries(store, prefix, 5, rangesOf(record));
        const values = await Promise.all(
          found.map(async (f) => {
            const seg = await store.get(
              `${prefix}.logs/${f.log.writer}/${f.log.lane}/s${f.seq.toString().padStart(20, "0")}`,
            );
            const start = f.bodyStart + f.entry.bodyOffset;
            const body = seg?.body.subarray(start, start + f.entry.bodyBytes) ?? new Uint8Array();
            return Buffer.from(body.subarray(36, body.byteLength - 4)).toString();
          }),
        );
        assert.deepEqual(values, stored);
      } finally {
        await cleanup();
      }
    });

    it("of two lanes taking one slot at once, each round has one winner and the loser's write is fenced", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const lanes = ["writer-a", "writer-b"].map(
          (writer) => new LogLane({ store, prefix, log: { writer, lane: 1 }, clock }),
        );
        for (const lane of lanes) await lane.open();
        const outcomes = await Promise.all(
          lanes.map((lane) => takeSlots({ store, prefix, by: lane.log, nextSeq: () => lane.nextSeq, clock }, [7])),
        );
        for (const o of outcomes) assert.deepEqual(o.contended, []);
        const newest = await readSlotRecord(store, prefix, 7);
        assert.ok(newest);
        const winner = lanes.find((l) => l.log.writer === newest.owner.writer) as LogLane;
        const loser = lanes.find((l) => l !== winner) as LogLane;
        // Versions form one chain: every created version's predecessor was read, none skipped.
        assert.equal(newest.previous.length, Number(newest.version));
        const lost = await loser.write({ kind: "data", entries: [entryOf(7, "k", 0n, "late")] });
        assert.equal(lost.kind === "fenced" && lost.fenced.some((f) => f.slot === 7), true);
        assert.equal((await winner.write({ kind: "data", entries: [entryOf(7, "k", 0n, "won")] })).kind, "stored");
      } finally {
        await cleanup();
      }
    });

    it("a lane that already owns a slot keeps its record (a restarted writer goes on as owner)", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const lane = new LogLane({ store, prefix, log: { writer: "w", lane: 0 }, clock });
        await lane.open();
        const first = await takeSlots({ store, prefix, by: lane.log, nextSeq: () => lane.nextSeq, clock }, [3]);
        const again = new LogLane({ store, prefix, log: { writer: "w", lane: 0 }, clock });
        await again.open();
        const second = await takeSlots({ store, prefix, by: again.log, nextSeq: () => again.nextSeq, clock }, [3]);
        assert.deepEqual(second.taken, first.taken);
      } finally {
        await cleanup();
      }
    });
  });
}

describe("slot records", () => {
  it("round-trip, and refuse what is not one", () => {
    const record = {
      slot: 1023,
      version: (1n << 64n) - 1n,
      owner: { writer: "writer-1", lane: 1, since: 12n },
      previous: [{ log: { writer: "writer-0", lane: 0 }, from: 3n, to: 9n }],
    };
    assert.deepEqual(decodeSlotRecord("r", encodeSlotRecord(record)), record);
    assert.throws(() => decodeSlotRecord("r", Buffer.from('{"slot":1024}')), /not a slot record/);
    assert.throws(() => decodeSlotRecord("r", Buffer.from("{")), /not a slot record/);
  });

  it("hash keys into slots as docs/log.md says (a vector for other languages)", () => {
    // The vectors of docs/log.md.
    assert.equal(slotOf("ks", "k"), 522);
    assert.equal(slotOf("events", "user/42"), 272);
    assert.equal(slotOf("ключи", "🔑"), 440);
    assert.notEqual(slotOf("ks", "k"), slotOf("k", "sk"), "the lengths keep keyspace and key apart");
    const counts = new Array(1024).fill(0);
    for (let i = 0; i < 102_400; i++) counts[slotOf("ks", `user/${i}`)]++;
    assert.ok(Math.min(...counts) > 50 && Math.max(...counts) < 160, "keys spread over the slots");
  });
});
