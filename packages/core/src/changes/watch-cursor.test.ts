// The watch cursor's wire form: every cursor issued round-trips; every single-bit flip of
// one, every edited field, a cursor sealed by hand with out-of-range numbers, too many
// writers or the JSON form of earlier versions is refused as INVALID_ARGUMENT on `cursor`.
// Cursors are built here from the layout docs/watch.md gives, not with the codec's code.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { crc32 } from "node:zlib";
import { InvalidArgument } from "../errors.ts";
import { advanceCursor, startingCursor } from "./change-feed.ts";
import { type ChangeObjectRef, MAX_NAME_MILLIS, MAX_NAME_SEQ } from "./change-log.ts";
import { decodeWatchCursor, encodeWatchCursor, MAX_CURSOR_WRITERS, type WatchCursor } from "./watch-cursor.ts";

const FOLDER = "pre/ks/.changes/";
const NOW = 1_750_000_000_000n;
const writerId = (i: number) => i.toString(16).padStart(16, "0");
const real: WatchCursor = {
  from: NOW - 15_000n,
  seen: new Map([
    ["0a1b2c3d4e5f6071", 41],
    ["f0e1d2c3b4a59687", 7],
  ]),
};

/** A cursor as docs/watch.md lays it out, sealed with the keyspace's tag and a CRC-32. */
function handMade(fields: {
  version?: number;
  from: bigint;
  count?: number;
  writers: readonly (readonly [string, bigint])[];
  folder?: string;
}): string {
  const body = Buffer.alloc(11 + 16 * fields.writers.length);
  body.writeUInt8(fields.version ?? 2, 0);
  body.writeBigInt64LE(fields.from, 1);
  body.writeUInt16LE(fields.count ?? fields.writers.length, 9);
  fields.writers.forEach(([id, seq], i) => {
    body.write(id, 11 + 16 * i, "hex");
    body.writeBigUInt64LE(seq, 19 + 16 * i);
  });
  const tag = createHash("sha256")
    .update(fields.folder ?? FOLDER)
    .digest()
    .subarray(0, 8);
  const sealed = Buffer.concat([body, tag, Buffer.alloc(4)]);
  sealed.writeUInt32LE(crc32(sealed.subarray(0, sealed.length - 4)), sealed.length - 4);
  return sealed.toString("base64url");
}

function refused(reason: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof InvalidArgument, `InvalidArgument, got ${String(err)}`);
    assert.equal(err.field, "cursor");
    assert.match(err.message, reason);
    return true;
  };
}

describe("watch cursor wire form", () => {
  it("round-trips, is the documented layout, and comes back the same from a resumed stream", () => {
    const token = encodeWatchCursor(FOLDER, real);
    assert.deepEqual(decodeWatchCursor(FOLDER, token), real);
    const writers = [...real.seen].sort().map(([w, s]) => [w, BigInt(s)] as const);
    assert.equal(token, handMade({ from: real.from, writers }), "the layout of docs/watch.md");
    assert.equal(encodeWatchCursor(FOLDER, decodeWatchCursor(FOLDER, token)), token);
    const empty = { from: 0n, seen: new Map() };
    assert.deepEqual(decodeWatchCursor(FOLDER, encodeWatchCursor(FOLDER, empty)), empty);
    const largest = { from: MAX_NAME_MILLIS, seen: new Map([[writerId(1), MAX_NAME_SEQ]]) };
    assert.deepEqual(decodeWatchCursor(FOLDER, encodeWatchCursor(FOLDER, largest)), largest);
  });

  it("refuses every single-bit flip of a real cursor, in its bytes and in its characters", () => {
    const token = encodeWatchCursor(FOLDER, real);
    const bytes = Buffer.from(token, "base64url");
    let flips = 0;
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const flipped = Buffer.from(bytes);
      flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7));
      assert.throws(() => decodeWatchCursor(FOLDER, flipped.toString("base64url")), refused(/./), `byte bit ${bit}`);
      flips++;
    }
    for (let i = 0; i < token.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const flipped = token.slice(0, i) + String.fromCharCode(token.charCodeAt(i) ^ (1 << bit)) + token.slice(i + 1);
        assert.throws(() => decodeWatchCursor(FOLDER, flipped), refused(/./), `character ${i} bit ${bit}`);
        flips++;
      }
    }
    assert.equal(flips, bytes.length * 8 + token.length * 8);
    // A stray character, or one cut off, is no cursor either (a decoder would drop the last).
    assert.throws(() => decodeWatchCursor(FOLDER, `${token}A`), refused(/./));
    assert.throws(() => decodeWatchCursor(FOLDER, `${token}=`), refused(/not a cursor this service issued/));
    assert.throws(() => decodeWatchCursor(FOLDER, token.slice(0, -1)), refused(/./));
  });

  it("refuses edited fields: seen or from changed in place", () => {
    const token = encodeWatchCursor(FOLDER, real);
    const edit = (at: number, write: (b: Buffer) => void) => {
      const bytes = Buffer.from(token, "base64url");
      write(bytes.subarray(at));
      return bytes.toString("base64url");
    };
    const seenPlus1000 = edit(19, (b) => b.writeBigUInt64LE(b.readBigUInt64LE(0) + 1000n));
    const fromPlusHour = edit(1, (b) => b.writeBigInt64LE(b.readBigInt64LE(0) + 3_600_000n));
    const fromMinusHour = edit(1, (b) => b.writeBigInt64LE(b.readBigInt64LE(0) - 3_600_000n));
    const writerDropped = edit(9, (b) => b.writeUInt16LE(1));
    for (const edited of [seenPlus1000, fromPlusHour, fromMinusHour, writerDropped]) {
      assert.throws(() => decodeWatchCursor(FOLDER, edited), refused(/damaged/));
    }
    assert.throws(() => decodeWatchCursor("pre/other/.changes/", token), refused(/another keyspace/));
  });

  it("refuses out-of-range numbers even in a cursor sealed by hand", () => {
    const one = (seq: bigint) => [[writerId(1), seq] as const];
    for (const from of [-1n, -(2n ** 63n), MAX_NAME_MILLIS + 1n, 2n ** 63n - 1n]) {
      assert.throws(
        () => decodeWatchCursor(FOLDER, handMade({ from, writers: one(0n) })),
        refused(/not a time a change object can have/),
        `from ${from}`,
      );
    }
    for (const seq of [BigInt(MAX_NAME_SEQ) + 1n, 2n ** 53n, 2n ** 64n - 1n]) {
      assert.throws(
        () => decodeWatchCursor(FOLDER, handMade({ from: NOW, writers: one(seq) })),
        refused(/beyond any object's/),
        `seq ${seq}`,
      );
    }
    // Valid in range, then refused for its time by the age check: future or expired.
    const future = decodeWatchCursor(FOLDER, handMade({ from: MAX_NAME_MILLIS, writers: [] }));
    assert.throws(() => startingCursor(FOLDER, encodeWatchCursor(FOLDER, future), NOW), refused(/in the future/));
    assert.throws(
      () => startingCursor(FOLDER, handMade({ from: 0n, writers: [] }), NOW),
      (err: unknown) => (err as { code?: string }).code === "OUT_OF_RANGE",
    );
  });

  it("refuses a malformed writer list: a count it does not hold, duplicates, disorder, another version", () => {
    const a = [writerId(1), 1n] as const;
    const b = [writerId(2), 1n] as const;
    const cases: [string, string, RegExp][] = [
      ["count above the entries", handMade({ from: NOW, count: 3, writers: [a, b] }), /does not hold the 3 writers/],
      ["count below the entries", handMade({ from: NOW, count: 1, writers: [a, b] }), /does not hold the 1 writers/],
      ["a writer twice", handMade({ from: NOW, writers: [a, a] }), /ascending order, each once/],
      ["descending", handMade({ from: NOW, writers: [b, a] }), /ascending order, each once/],
      ["version 3", handMade({ version: 3, from: NOW, writers: [a] }), /version 3 is not supported/],
      ["another keyspace", handMade({ from: NOW, writers: [a], folder: "x/.changes/" }), /another keyspace/],
      ["empty", "", /not a cursor this service issued/],
      ["not base64url", "c3VyZQ==", /not a cursor this service issued/],
      ["too short", "AgAAAA", /not a cursor this service issued/],
    ];
    for (const [what, token, reason] of cases) {
      assert.throws(() => decodeWatchCursor(FOLDER, token), refused(reason), what);
    }
  });

  it("holds MAX_CURSOR_WRITERS writers; a cursor claiming more is refused on its length, before it is decoded", () => {
    const writers = Array.from({ length: MAX_CURSOR_WRITERS }, (_, i) => [writerId(i), 1n] as const);
    const largest = handMade({ from: NOW, writers });
    assert.equal(decodeWatchCursor(FOLDER, largest).seen.size, MAX_CURSOR_WRITERS);
    const oneMore = handMade({ from: NOW, writers: [...writers, [writerId(MAX_CURSOR_WRITERS), 1n]] });
    assert.throws(() => decodeWatchCursor(FOLDER, oneMore), refused(/longer than any cursor this service issues/));
    // 100,000 writers: refused on the string's length alone, whatever the characters.
    const huge = "A".repeat(Math.ceil(((11 + 16 * 100_000 + 12) * 4) / 3));
    assert.throws(() => decodeWatchCursor(FOLDER, huge), refused(/4096 writers/));
  });

  it("refuses the JSON form of earlier versions, which carries no check, saying to watch from now", () => {
    const tag = createHash("sha256").update(FOLDER).digest("base64url").slice(0, 11);
    const old = Buffer.from(JSON.stringify([1, tag, String(NOW), [[writerId(1), 3]]])).toString("base64url");
    assert.throws(() => decodeWatchCursor(FOLDER, old), refused(/earlier klstore version.*watch from now/));
    const from2e70 = Buffer.from(JSON.stringify([1, tag, String(2n ** 70n), []])).toString("base64url");
    assert.throws(() => decodeWatchCursor(FOLDER, from2e70), refused(/earlier klstore version/));
  });

  it("never grows past MAX_CURSOR_WRITERS: the writers with the oldest objects are forgotten", () => {
    const refs: ChangeObjectRef[] = Array.from({ length: MAX_CURSOR_WRITERS + 10 }, (_, i) => ({
      key: `t${i}`,
      millis: NOW + BigInt(i),
      writer: writerId(i),
      seq: 0,
    }));
    const { deliver, next } = advanceCursor({ from: NOW, seen: new Map() }, refs, NOW + 10_000n);
    assert.equal(deliver.length, refs.length, "every object is delivered");
    assert.equal(next.seen.size, MAX_CURSOR_WRITERS);
    assert.ok(!next.seen.has(writerId(9)) && next.seen.has(writerId(10)), "the ten oldest writers are forgotten");
    assert.deepEqual(decodeWatchCursor(FOLDER, encodeWatchCursor(FOLDER, next)), next);
    // Forgetting only repeats: the next step delivers the forgotten writers' objects again.
    const again = advanceCursor(next, refs, NOW + 10_000n);
    assert.deepEqual(
      again.deliver.map((r) => r.writer),
      Array.from({ length: 10 }, (_, i) => writerId(i)),
    );
  });

  it("starts from now without a cursor", () => {
    assert.deepEqual(startingCursor(FOLDER, "", NOW), { from: NOW, seen: new Map() });
    assert.deepEqual(startingCursor(FOLDER, undefined, NOW), { from: NOW, seen: new Map() });
  });
});
