import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { CorruptObject } from "../errors.ts";
import { decodeDataObject, encodeDataObject } from "./data-object.ts";
import type { DataObjectName } from "./layout.ts";
import { copyRecords, decodeRecords, encodeRecords, type Item, storedRecords } from "./records.ts";

const items: Item[] = [
  { offset: 1n, timestamp: 1700000000000n, nonce: 10n, value: Buffer.from("hello") },
  { offset: 2n, timestamp: 1700000000001n, nonce: undefined, value: new Uint8Array(0) },
  { offset: 3n, timestamp: 1700000000002n, nonce: 50n, value: Buffer.from("x") },
];

/** docs/format.md's test vector for `form`: the hex on the line after its caption. */
function documentedVector(form: string): string {
  const lines = readFileSync(new URL("../../../../docs/format.md", import.meta.url), "utf8").split("\n");
  const caption = lines.findIndex((l) => l.startsWith(`${form}`) && l.includes(":"));
  assert.ok(caption >= 0, `docs/format.md has a ${form} vector`);
  return (lines[caption + 1] as string).replace(/[ |]/g, "");
}

function nameFor(bytes: number): DataObjectName {
  return {
    firstOffset: 1n,
    lastOffset: 3n,
    minTimestamp: 1700000000000n,
    maxTimestamp: 1700000000002n,
    firstNonce: 10n,
    nextNonce: 51n,
    sizeBytes: BigInt(bytes),
    priorStartOffset: 0n,
    compression: "none",
  };
}

describe("record codec", () => {
  it("encodes docs/format.md's packed_items vector: the records of a data object's body", () => {
    const records: Item[] = [
      {
        offset: 5n,
        timestamp: 1_700_000_000_000n,
        nonce: 0x0102030405060708090a0b0c0d0e0f10n,
        value: Buffer.from("hi"),
      },
      { offset: 6n, timestamp: 1_700_000_000_000n, nonce: undefined, value: new Uint8Array(0) },
    ];
    assert.equal(Buffer.from(encodeRecords(records)).toString("hex"), documentedVector("packed_items"));
  });

  it("lays a record out as the reference does", () => {
    const bytes = encodeRecords([items[0] as Item]);
    const view = new DataView(bytes.buffer);
    assert.equal(bytes.byteLength, 36 + 5 + 4);
    assert.equal(view.getBigUint64(0, true), 1n);
    assert.equal(view.getBigInt64(8, true), 1700000000000n);
    assert.equal(view.getBigUint64(16, true), 10n);
    assert.equal(view.getBigUint64(24, true), 0n);
    assert.equal(view.getUint32(32, true), 5);
    assert.equal(Buffer.from(bytes.subarray(36, 41)).toString(), "hello");
    assert.equal(view.getUint32(41, true), 41);
  });

  it("writes all ones for a missing nonce and reads it back as none", () => {
    const bytes = encodeRecords([{ ...(items[1] as Item), offset: 1n }]);
    assert.ok(bytes.subarray(16, 32).every((b) => b === 0xff));
    const name = { ...nameFor(bytes.byteLength), lastOffset: 1n };
    assert.equal(decodeRecords("k", name, bytes)[0]?.nonce, undefined);
  });

  it("splits a nonce wider than 64 bits into its low and high halves", () => {
    const nonce = (0x0123_4567_89ab_cdefn << 64n) | 0xfedc_ba98_7654_3210n;
    const bytes = encodeRecords([{ ...(items[0] as Item), nonce }]);
    const view = new DataView(bytes.buffer);
    assert.equal(view.getBigUint64(16, true), 0xfedc_ba98_7654_3210n);
    assert.equal(view.getBigUint64(24, true), 0x0123_4567_89ab_cdefn);
  });

  it("round-trips items", () => {
    const bytes = encodeRecords(items);
    const back = decodeRecords("k", nameFor(bytes.byteLength), bytes);
    assert.deepEqual(
      back.map((i) => ({ ...i, value: Buffer.from(i.value).toString() })),
      items.map((i) => ({ ...i, value: Buffer.from(i.value).toString() })),
    );
  });

  it("reports truncation and corruption naming the object, never returning garbage", () => {
    const bytes = encodeRecords(items);
    assert.throws(
      () => decodeRecords("ks/k/obj", nameFor(bytes.byteLength), bytes.subarray(0, bytes.byteLength - 3)),
      (err) => {
        assert.ok(err instanceof CorruptObject);
        assert.match(err.message, /ks\/k\/obj/);
        return true;
      },
    );
    const truncated = bytes.subarray(0, bytes.byteLength - 3);
    assert.throws(() => decodeRecords("o", nameFor(truncated.byteLength), truncated), CorruptObject);
    const flipped = Uint8Array.from(bytes);
    flipped[32] = 200; // length of the first value
    assert.throws(() => decodeRecords("o", nameFor(flipped.byteLength), flipped), CorruptObject);
    const wrongOffset = Uint8Array.from(bytes);
    wrongOffset[0] = 7;
    assert.throws(() => decodeRecords("o", nameFor(wrongOffset.byteLength), wrongOffset), CorruptObject);
  });

  it("reads timestamps out of order and outside the name's range, and still catches corruption", () => {
    // As the reference merges three appends whose timestamps went back in time: named by the
    // first input's minimum (500) and the last input's maximum (100), items anywhere.
    const outOfOrder: Item[] = [500n, 900n, 50n, 100n].map((timestamp, i) => ({
      offset: BigInt(i + 1),
      timestamp,
      nonce: BigInt(10 + i),
      value: Buffer.from(`v${i}`),
    }));
    const bytes = encodeRecords(outOfOrder);
    const name: DataObjectName = {
      ...nameFor(bytes.byteLength),
      lastOffset: 4n,
      minTimestamp: 500n,
      maxTimestamp: 100n,
      nextNonce: 14n,
    };
    assert.deepEqual(
      decodeRecords("o", name, bytes).map((i) => i.timestamp),
      [500n, 900n, 50n, 100n],
    );
    const skipped = Uint8Array.from(bytes);
    new DataView(skipped.buffer).setBigUint64(skipped.byteLength / 2, 9n, true); // offset of the third
    assert.throws(() => decodeRecords("o", name, skipped), /expected offset 3, found 9/);
    const repeatedNonce = Uint8Array.from(bytes);
    new DataView(repeatedNonce.buffer).setBigUint64(repeatedNonce.byteLength / 2 + 16, 11n, true);
    assert.throws(() => decodeRecords("o", name, repeatedNonce), /nonce 11 outside the name's range or order/);
    assert.throws(() => decodeRecords("o", { ...name, sizeBytes: name.sizeBytes + 1n }, bytes), CorruptObject);
    assert.throws(() => decodeRecords("o", { ...name, lastOffset: 5n }, bytes), /its name says 5/);
  });

  it("compresses with zstd and checks the stored size", () => {
    const stored = encodeDataObject(items, "zstd");
    const name = { ...nameFor(stored.byteLength), compression: "zstd" as const };
    assert.equal(decodeDataObject("o", name, stored).length, 3);
    assert.throws(() => decodeDataObject("o", name, stored.subarray(1)), CorruptObject);
  });

  it("gives decoded items back as a view of their stored records, only when they are one run", () => {
    const body = encodeRecords(items);
    const decoded = decodeRecords("o", nameFor(body.byteLength), body);
    const all = storedRecords(decoded);
    assert.ok(all);
    assert.equal(all.buffer, body.buffer);
    assert.deepEqual(Buffer.from(all), Buffer.from(body));
    const tail = storedRecords(decoded.slice(1)) ?? assert.fail("a run of the body");
    assert.deepEqual(decodeRecords("o", { ...nameFor(tail.byteLength), firstOffset: 2n }, tail), decoded.slice(1));
    assert.equal(storedRecords([])?.byteLength, 0);
    // Not one run: a gap, another order, another body, or an item that differs from its record.
    assert.equal(storedRecords([decoded[0] as Item, decoded[2] as Item]), undefined);
    assert.equal(storedRecords([...decoded].reverse()), undefined);
    assert.equal(storedRecords(items), undefined);
    assert.equal(storedRecords([{ ...(decoded[0] as Item), offset: 9n }]), undefined);
    assert.equal(storedRecords([{ ...(decoded[0] as Item), timestamp: 9n }]), undefined);
    assert.equal(storedRecords([{ ...(decoded[0] as Item), nonce: undefined }]), undefined);
    assert.equal(storedRecords([{ ...(decoded[1] as Item), nonce: 11n }]), undefined);
  });

  it("copies items into one records body of their own, in either order, that is sent as stored", () => {
    const body = encodeRecords(items);
    const stored = decodeRecords("k", nameFor(body.byteLength), body);
    for (const order of [stored, stored.toReversed()]) {
      const copies = copyRecords(order);
      assert.deepEqual(
        copies.map((i) => [i.offset, i.timestamp, i.nonce, Buffer.from(i.value).toString()]),
        order.map((i) => [i.offset, i.timestamp, i.nonce, Buffer.from(i.value).toString()]),
      );
      for (const copy of copies) assert.notEqual(copy.value.buffer, body.buffer);
      const ascending = copies[0] && copies[0].offset > 1n ? copies.toReversed() : copies;
      assert.deepEqual(storedRecords(ascending), body, "one records body, as encodeRecords makes it");
    }
    assert.deepEqual(copyRecords([]), []);
  });
});
