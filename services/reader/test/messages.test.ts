import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeRecords, type Item } from "@klstore/core";
import { unpackItems } from "@klstore/proto";
import { storedRuns, toItemFields } from "../src/messages.ts";

/** The items of one stored object body, as the reader decodes them: values are views into it. */
function objectOf(first: bigint, values: string[]): { body: Uint8Array; items: Item[] } {
  const inputs = values.map((v, i) => ({
    offset: first + BigInt(i),
    timestamp: 1000n + BigInt(i),
    nonce: undefined,
    value: new TextEncoder().encode(v),
  }));
  const body = encodeRecords(inputs);
  let pos = 0;
  const items = inputs.map((input) => {
    const value = body.subarray(pos + 36, pos + 36 + input.value.byteLength);
    pos += 40 + input.value.byteLength;
    return { ...input, value };
  });
  return { body, items };
}

describe("a stream page across stored objects", () => {
  const a = objectOf(0n, ["a0", "a1", "a2"]);
  const b = objectOf(3n, ["b3", "b4"]);

  it("splits into one run per object, in the order read", () => {
    const forwards = [...a.items.slice(1), ...b.items];
    assert.deepEqual(
      storedRuns(forwards).map((run) => run.map((i) => i.offset)),
      [
        [1n, 2n],
        [3n, 4n],
      ],
    );
    const backwards = forwards.toReversed();
    assert.deepEqual(
      storedRuns(backwards).map((run) => run.map((i) => i.offset)),
      [
        [4n, 3n],
        [2n, 1n],
      ],
    );
    assert.deepEqual(storedRuns([]), []);
  });

  it("sends each run as a view of its object's records, not encoded again", () => {
    for (const order of ["forwards", "backwards"] as const) {
      const page = order === "forwards" ? [...a.items, ...b.items] : [...a.items, ...b.items].toReversed();
      const sent = storedRuns(page).map((run) => toItemFields(run, order, true).packedItems as Uint8Array);
      const bodies = order === "forwards" ? [a.body, b.body] : [b.body, a.body];
      assert.deepEqual(
        sent.map((bytes) => bytes.buffer),
        bodies.map((body) => body.buffer),
      );
      const offsets = sent.flatMap((bytes) => {
        const ascending = unpackItems(bytes).map((i) => i.offset);
        return order === "forwards" ? ascending : ascending.toReversed();
      });
      assert.deepEqual(
        offsets,
        page.map((i) => i.offset),
      );
    }
  });
});
