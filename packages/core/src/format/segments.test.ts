import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { InvalidArgument } from "../errors.ts";
import { decodeSegment, encodeSegment, MAX_KEYSPACE_SEGMENT_BYTES, MAX_SEGMENT_BYTES } from "./segments.ts";

describe("segment encoding", () => {
  it("keeps plain names as they are, for interoperability with the reference", () => {
    assert.equal(encodeSegment("key", "user-42_a.b"), "user-42_a.b");
  });

  it("escapes names that would be unsafe path segments", () => {
    assert.equal(encodeSegment("key", "."), "%2E");
    assert.equal(encodeSegment("key", ".."), "%2E.");
    assert.equal(encodeSegment("key", "a/b"), "a%2Fb");
    assert.equal(encodeSegment("key", "a b%"), "a%20b%25");
    assert.equal(encodeSegment("keyspace", "x_config.ini"), "x_config%2Eini");
    assert.equal(encodeSegment("key", "x_config.ini"), "x_config.ini");
  });

  it("rejects empty, malformed and oversized names", () => {
    assert.throws(() => encodeSegment("key", ""), InvalidArgument);
    assert.throws(() => encodeSegment("key", "\ud800"), InvalidArgument);
    assert.throws(() => encodeSegment("key", "a".repeat(MAX_SEGMENT_BYTES + 1)), InvalidArgument);
    assert.equal(encodeSegment("key", "a".repeat(MAX_SEGMENT_BYTES)).length, MAX_SEGMENT_BYTES);
    // A keyspace's config object adds "_config.ini" to its segment, within the same 255.
    assert.equal(MAX_KEYSPACE_SEGMENT_BYTES, 244);
    assert.throws(() => encodeSegment("keyspace", "a".repeat(245)), /over the limit of 244/);
    assert.equal(encodeSegment("keyspace", "a".repeat(244)).length, 244);
  });

  it("round-trips every name and never yields an unsafe or colliding segment", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }),
        fc.constantFrom("key", "keyspace"),
        (name, kind) => {
          const seg = encodeSegment(kind as "key", name);
          assert.match(seg, /^[A-Za-z0-9._%-]+$/);
          assert.notEqual(seg[0], ".");
          assert.equal(decodeSegment(kind as "key", seg), name);
        },
      ),
      { seed: 42, numRuns: 2000 },
    );
  });

  it("refuses to decode segments that are not canonical", () => {
    assert.equal(decodeSegment("key", "%41"), undefined); // 'A' must be written plain
    assert.equal(decodeSegment("key", "a%2f"), undefined); // lower-case hex
    assert.equal(decodeSegment("key", "a b"), undefined);
  });
});
