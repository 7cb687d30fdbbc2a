import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { PackedFormatError, unpackItems } from "./packed-items.ts";

/** One record as the layout in packed-items.ts describes it, written field by field. */
function record(offset: bigint, timestamp: bigint, nonce: bigint | undefined, value: string): Uint8Array {
  const bytes = new TextEncoder().encode(value);
  const out = new Uint8Array(40 + bytes.length);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, offset, true);
  view.setBigInt64(8, timestamp, true);
  const n = nonce ?? (1n << 128n) - 1n;
  view.setBigUint64(16, n & ((1n << 64n) - 1n), true);
  view.setBigUint64(24, n >> 64n, true);
  view.setUint32(32, bytes.length, true);
  out.set(bytes, 36);
  view.setUint32(36 + bytes.length, 36 + bytes.length, true);
  return out;
}

const concat = (parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const text = (v: Uint8Array) => new TextDecoder().decode(v);

/** docs/format.md's test vector for `form`: the hex on the line after its caption. */
function documentedVector(form: string): string {
  const lines = readFileSync(new URL("../../../docs/format.md", import.meta.url), "utf8").split("\n");
  const caption = lines.findIndex((l) => l.startsWith(`${form}`) && l.includes(":"));
  assert.ok(caption >= 0, `docs/format.md has a ${form} vector`);
  return (lines[caption + 1] as string).replace(/[ |]/g, "");
}

describe("packed items' documented byte layout", () => {
  it("reads docs/format.md's vector (u128 nonce: 16 bytes, least significant first)", () => {
    const items = unpackItems(Buffer.from(documentedVector("packed_items"), "hex"));
    assert.deepEqual(
      items.map((i) => [i.offset, i.timestamp, i.nonce, text(i.value)]),
      [
        [5n, 1_700_000_000_000n, 0x0102030405060708090a0b0c0d0e0f10n, "hi"],
        [6n, 1_700_000_000_000n, undefined, ""],
      ],
    );
  });
});

describe("unpackItems", () => {
  it("reads every record in order, nonces set and unset, values as views", () => {
    const packed = concat([
      record(7n, -5n, undefined, "seven"),
      record(6n, 1_700_000_000_000n, (1n << 127n) + 3n, ""),
      record(5n, 0n, 0n, "five"),
    ]);
    const items = unpackItems(packed);
    assert.deepEqual(
      items.map((i) => [i.offset, i.timestamp, i.nonce, text(i.value)]),
      [
        [7n, -5n, undefined, "seven"],
        [6n, 1_700_000_000_000n, (1n << 127n) + 3n, ""],
        [5n, 0n, 0n, "five"],
      ],
    );
    assert.equal(items[0]?.value.buffer, packed.buffer);
  });

  it("reads nothing from nothing", () => {
    assert.deepEqual(unpackItems(new Uint8Array(0)), []);
  });

  it("refuses bytes that the records do not tile exactly", () => {
    const good = record(1n, 2n, undefined, "value");
    assert.throws(() => unpackItems(good.subarray(0, good.length - 1)), PackedFormatError);
    assert.throws(() => unpackItems(concat([good, good.subarray(0, 10)])), PackedFormatError);
    const badTrailer = good.slice();
    badTrailer[badTrailer.length - 4] = 0;
    assert.throws(() => unpackItems(badTrailer), /does not end where its length says/);
    const hugeLength = good.slice();
    new DataView(hugeLength.buffer).setUint32(32, 0xffff_fff0, true);
    assert.throws(() => unpackItems(hugeLength), PackedFormatError);
  });
});
