import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { packInsertions, packOutcomes, unpackInsertions, unpackOutcomes } from "./packed-appends.ts";
import { PackedFormatError } from "./packed-items.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** docs/format.md's test vector for `form`: the hex on the line after its caption. */
function documentedVector(form: string): string {
  const lines = readFileSync(new URL("../../../docs/format.md", import.meta.url), "utf8").split("\n");
  const caption = lines.findIndex((l) => l.startsWith(`${form}`) && l.includes(":"));
  assert.ok(caption >= 0, `docs/format.md has a ${form} vector`);
  return (lines[caption + 1] as string).replace(/[ |]/g, "");
}

describe("packed appends' documented byte layout", () => {
  it("packs insertions as docs/format.md's vector (u128 nonce: 16 bytes, least significant first)", () => {
    const vector = documentedVector("packed_insertions");
    const insertions = [
      { value: bytes("hi"), timestamp: 1_700_000_000_000n, nonce: 0x0102030405060708090a0b0c0d0e0f10n },
      { value: bytes("x") },
    ];
    assert.equal(hex(packInsertions(insertions)), vector);
    assert.deepEqual(unpackInsertions(new Uint8Array(Buffer.from(vector, "hex"))), [
      { value: bytes("hi"), timestamp: 1_700_000_000_000n, nonce: 0x0102030405060708090a0b0c0d0e0f10n },
      { value: bytes("x"), timestamp: undefined, nonce: undefined },
    ]);
  });

  it("packs outcomes as docs/format.md's vector", () => {
    const vector = documentedVector("packed_outcomes");
    const outcomes = [{ offset: 5n, timestamp: 1_700_000_000_000n }, undefined];
    assert.equal(hex(packOutcomes(outcomes)), vector);
    assert.deepEqual(unpackOutcomes(Buffer.from(vector, "hex")), outcomes);
  });
});

describe("packed insertions", () => {
  it("carry values, nonces and timestamps, set or unset, through a round trip", () => {
    const insertions = [
      { value: bytes("plain") },
      { value: bytes(""), nonce: (1n << 128n) - 2n },
      { value: bytes("timed"), timestamp: -1n },
      { value: bytes("both"), nonce: 0n, timestamp: 1_700_000_000_000n },
    ];
    const packed = packInsertions(insertions);
    assert.equal(packed.byteLength, 5 * 4 + 5 + 0 + 5 + 4 + 16 + 16 + 8 + 8);
    const back = unpackInsertions(packed);
    assert.deepEqual(
      back.map((i) => [new TextDecoder().decode(i.value), i.nonce, i.timestamp]),
      insertions.map((i) => [new TextDecoder().decode(i.value), i.nonce, i.timestamp]),
    );
    assert.equal(back[0]?.value.buffer, packed.buffer, "values are views");
    assert.deepEqual(unpackInsertions(packInsertions([])), []);
  });

  it("refuses what would store another number than given", () => {
    assert.throws(() => packInsertions([{ value: bytes("x"), nonce: 1n << 128n }]), RangeError);
    assert.throws(() => packInsertions([{ value: bytes("x"), nonce: -1n }]), RangeError);
    assert.throws(() => packInsertions([{ value: bytes("x"), timestamp: 1n << 63n }]), RangeError);
  });

  it("refuses bytes the insertions do not tile exactly, naming the insertion", () => {
    const packed = packInsertions([{ value: bytes("first") }, { value: bytes("second"), nonce: 5n }]);
    for (let cut = 1; cut < packed.byteLength; cut++) {
      if (cut === 10) continue; // the first insertion's end: one whole insertion
      assert.throws(() => unpackInsertions(packed.subarray(0, cut)), PackedFormatError, `cut at ${cut}`);
    }
    assert.equal(unpackInsertions(packed.subarray(0, 10)).length, 1);
    const flagged = packed.slice();
    flagged[4] = 4;
    assert.throws(() => unpackInsertions(flagged), /insertion 0 has unknown flags 4/);
    assert.throws(() => unpackInsertions(packed, 1), /more than 1 insertions/);
    assert.equal(unpackInsertions(packed, 2).length, 2);
    const long = packed.slice();
    new DataView(long.buffer).setUint32(10, 0xffff_ffff, true);
    assert.throws(() => unpackInsertions(long), /insertion 1 is cut short in its value/);
  });
});

describe("packed outcomes", () => {
  it("carry offsets, timestamps and duplicates through a round trip", () => {
    const outcomes = [{ offset: 0n, timestamp: -5n }, undefined, { offset: (1n << 64n) - 2n, timestamp: 7n }];
    assert.deepEqual(unpackOutcomes(packOutcomes(outcomes)), outcomes);
    assert.throws(() => unpackOutcomes(new Uint8Array(17)), PackedFormatError);
  });
});
