import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { CorruptObject } from "../errors.ts";
import { U64_MAX } from "./layout.ts";
import { LogLayout, SLOT_COUNT, SlotLayout } from "./log-layout.ts";
import {
  checkEntryBody,
  decodeSegmentIndex,
  type EntryInput,
  encodeSegment,
  entryRange,
  type SegmentInput,
  segmentIndexEnd,
} from "./log-segment.ts";
import { decodeRecords, encodeRecords, type RecordInput } from "./records.ts";

const U128_MAX = (1n << 128n) - 1n;

function entry(keyspace: string, key: string, first: bigint, values: string[], nonce?: bigint): EntryInput {
  const records: RecordInput[] = values.map((v, i) => ({
    offset: first + BigInt(i),
    timestamp: 1_700_000_000_000n + BigInt(i),
    nonce: nonce === undefined ? undefined : nonce + BigInt(i),
    value: Buffer.from(v),
  }));
  return {
    slot: 7,
    keyspace,
    key,
    name: {
      firstOffset: first,
      lastOffset: first + BigInt(values.length - 1),
      minTimestamp: records[0]?.timestamp ?? 0n,
      maxTimestamp: records.at(-1)?.timestamp ?? 0n,
      firstNonce: nonce ?? 0n,
      nextNonce: nonce === undefined ? 0n : nonce + BigInt(values.length),
      priorStartOffset: first === 0n ? 0n : first - 1n,
    },
    records,
  };
}

const SAMPLE: SegmentInput = {
  seq: 41n,
  createdMillis: 1_700_000_000_123n,
  kind: "data",
  log: { writer: "writer-0", lane: 1 },
  progress: [
    { slot: 7, source: { writer: "writer-2", lane: 0 }, through: 12n },
    { slot: 1023, source: { writer: "writer-0", lane: 1 }, through: U64_MAX },
  ],
  fenced: [],
  entries: [entry("ks", "user/42", 10n, ["a", "bb"], 5n), entry("ks", "ключ", 0n, ["x".repeat(300)])],
};

describe("log segments", () => {
  it("carry the log's state and every entry, whose records are a data object's body byte for byte", () => {
    const bytes = encodeSegment(SAMPLE);
    const index = decodeSegmentIndex("seg", bytes, bytes.byteLength);
    assert.equal(index.seq, 41n);
    assert.equal(index.createdMillis, 1_700_000_000_123n);
    assert.equal(index.kind, "data");
    assert.deepEqual(index.log, SAMPLE.log);
    assert.deepEqual(index.progress, SAMPLE.progress);
    assert.equal(index.entries.length, 2);
    for (const [i, e] of index.entries.entries()) {
      const input = SAMPLE.entries?.[i] as EntryInput;
      assert.equal(e.keyspace, input.keyspace);
      assert.equal(e.key, input.key);
      assert.deepEqual({ ...e.name, sizeBytes: undefined }, { ...input.name, sizeBytes: undefined });
      const { start, end } = entryRange(index, e);
      const body = checkEntryBody("seg", e, bytes.subarray(start, end));
      assert.deepEqual(Buffer.from(body), Buffer.from(encodeRecords(input.records)));
      const items = decodeRecords("seg", { ...e.name, compression: "none" }, body);
      assert.deepEqual(
        items.map((it) => Buffer.from(it.value).toString()),
        input.records.map((r) => Buffer.from(r.value).toString()),
      );
    }
  });

  it("need only their header and index to be indexed (a reader's first ranged GET)", () => {
    const bytes = encodeSegment(SAMPLE);
    const end = segmentIndexEnd("seg", bytes.subarray(0, 64));
    assert.ok(end < bytes.byteLength);
    const index = decodeSegmentIndex("seg", bytes.subarray(0, end));
    assert.equal(index.entries.length, 2);
    assert.equal(index.bodyStart, end);
  });

  it("encode fences and empty segments", () => {
    const fence = encodeSegment({
      seq: 0n,
      createdMillis: -5n,
      kind: "takeover-fence",
      log: { writer: "cli-1", lane: 0 },
      fenced: [{ slot: 3, by: { writer: "writer-1", lane: 1 }, recordVersion: 9n }],
    });
    const index = decodeSegmentIndex("fence", fence, fence.byteLength);
    assert.equal(index.kind, "takeover-fence");
    assert.deepEqual(index.fenced, [{ slot: 3, by: { writer: "writer-1", lane: 1 }, recordVersion: 9n }]);
    assert.deepEqual(index.entries, []);
    const restart = encodeSegment({ seq: 1n, createdMillis: 0n, kind: "restart-fence", log: index.log });
    assert.equal(decodeSegmentIndex("restart", restart).kind, "restart-fence");
  });

  it("round-trips any entries (property)", () => {
    const value = fc.uint8Array({ maxLength: 40 });
    const anEntry = fc.record({
      keyspace: fc.string({ minLength: 1, maxLength: 10 }),
      key: fc.string({ minLength: 1, maxLength: 20 }),
      values: fc.array(value, { minLength: 1, maxLength: 5 }),
      first: fc.bigInt({ min: 0n, max: U64_MAX - 10n }),
      nonce: fc.option(fc.bigInt({ min: 0n, max: U128_MAX - 10n }), { nil: undefined }),
      slot: fc.integer({ min: 0, max: SLOT_COUNT - 1 }),
    });
    fc.assert(
      fc.property(fc.array(anEntry, { maxLength: 6 }), fc.bigInt({ min: 0n, max: U64_MAX }), (inputs, seq) => {
        const entries = inputs.map((e) => {
          const made = entry(e.keyspace, e.key, e.first, [], e.nonce);
          const records = e.values.map((v, i) => ({
            offset: e.first + BigInt(i),
            timestamp: BigInt(i),
            nonce: e.nonce === undefined ? undefined : e.nonce + BigInt(i),
            value: v,
          }));
          return {
            ...made,
            slot: e.slot,
            name: { ...made.name, lastOffset: e.first + BigInt(e.values.length - 1) },
            records,
          };
        });
        const bytes = encodeSegment({ seq, createdMillis: 0n, kind: "data", log: { writer: "w", lane: 0 }, entries });
        const index = decodeSegmentIndex("seg", bytes, bytes.byteLength);
        assert.equal(index.seq, seq);
        assert.deepEqual(
          index.entries.map((e) => [e.slot, e.keyspace, e.key, e.name.firstOffset, e.name.lastOffset]),
          entries.map((e) => [e.slot, e.keyspace, e.key, e.name.firstOffset, e.name.lastOffset]),
        );
        for (const [i, e] of index.entries.entries()) {
          const { start, end } = entryRange(index, e);
          assert.deepEqual(
            Buffer.from(bytes.subarray(start, end)),
            Buffer.from(encodeRecords((entries[i] as EntryInput).records)),
          );
        }
      }),
      { seed: 22, numRuns: 200 },
    );
  });

  it("refuse every single-bit flip of the header and index, naming the object", () => {
    const bytes = encodeSegment(SAMPLE);
    const end = segmentIndexEnd("seg", bytes);
    let refused = 0;
    for (let bit = 0; bit < end * 8; bit++) {
      const flipped = Buffer.from(bytes);
      flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7));
      try {
        decodeSegmentIndex("seg", flipped, flipped.byteLength);
      } catch (err) {
        assert.ok(err instanceof CorruptObject && err.message.includes("seg"));
        refused++;
        continue;
      }
      assert.fail(`bit ${bit} flipped was accepted`);
    }
    assert.equal(refused, end * 8);
  });

  it("refuse a damaged entry body and a truncated or padded object", () => {
    const bytes = encodeSegment(SAMPLE);
    const index = decodeSegmentIndex("seg", bytes);
    const e = index.entries[0];
    assert.ok(e);
    const { start, end } = entryRange(index, e);
    const body = Buffer.from(bytes.subarray(start, end));
    body[3] = (body[3] as number) ^ 1;
    assert.throws(() => checkEntryBody("seg", e, body), CorruptObject);
    assert.throws(() => decodeSegmentIndex("seg", bytes, bytes.byteLength - 1), CorruptObject);
    assert.throws(() => decodeSegmentIndex("seg", bytes, bytes.byteLength + 1), CorruptObject);
    assert.throws(() => decodeSegmentIndex("seg", bytes.subarray(0, index.bodyStart - 1)), CorruptObject);
    assert.throws(() => decodeSegmentIndex("seg", Buffer.from("not a segment at all, not at all")), /bad magic/);
  });
});

describe("log and slot layouts", () => {
  it("name segments by dense, zero-padded sequence numbers that sort as they count", () => {
    const log = new LogLayout("p/", { writer: "writer-0", lane: 1 });
    assert.equal(log.segmentKey(12n), "p/.logs/writer-0/1/s00000000000000000012");
    assert.equal(log.parseSegmentKey(log.segmentKey(U64_MAX)), U64_MAX);
    assert.equal(log.parseSegmentKey("p/.logs/writer-0/1/s12"), undefined);
    assert.equal(log.parseSegmentKey("p/.logs/writer-0/10/s00000000000000000012"), undefined);
    assert.ok(log.startAfterForSeq(5n) < log.segmentKey(5n) && log.segmentKey(4n) <= log.startAfterForSeq(5n));
    assert.throws(() => new LogLayout("", { writer: ".hidden", lane: 0 }), /writer.name/);
    assert.throws(() => new LogLayout("", { writer: "a/b", lane: 0 }), /writer.name/);
    assert.throws(() => new LogLayout("", { writer: "w", lane: 70_000 }), /lane/);
  });

  it("name slot record versions inverted, so the newest lists first", () => {
    const slot = new SlotLayout("", 17);
    const keys = [0n, 1n, 2n, 10n, U64_MAX].map((v) => slot.versionKey(v));
    assert.deepEqual([...keys].sort(), [...keys].reverse());
    assert.equal(slot.parseVersionKey(slot.versionKey(9n)), 9n);
    assert.equal(slot.folder, ".slots/0017/");
    assert.throws(() => new SlotLayout("", SLOT_COUNT), /slot/);
  });
});
