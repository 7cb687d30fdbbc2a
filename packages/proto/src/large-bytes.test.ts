import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ReadPageResponseSchema, ReadStreamResponseSchema } from "./gen/klstore/v1/reader_pb.ts";
import { InsertionSchema } from "./gen/klstore/v1/types_pb.ts";
import { encodeMessage, LARGE_BYTES_FIELD } from "./large-bytes.ts";
import { fromUint128, toUint128 } from "./uint128.ts";

function bytesOf(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff);
}

describe("encodeMessage", () => {
  it("writes a large bytes field after the fields numbered above it, and protobuf-es decodes the same message", () => {
    const value = bytesOf(LARGE_BYTES_FIELD * 3 + 17, 7);
    const message = create(InsertionSchema, { value, nonce: toUint128(12345678901234567890n) });
    const encoded = encodeMessage(InsertionSchema, message);
    const inOrder = toBinary(InsertionSchema, message);
    assert.notDeepEqual(new Uint8Array(encoded), inOrder);
    assert.equal(encoded.byteLength, inOrder.byteLength);
    const back = fromBinary(InsertionSchema, encoded);
    assert.deepEqual(new Uint8Array(back.value), value);
    assert.equal(fromUint128(back.nonce), 12345678901234567890n);
  });

  it("gives a page's bytes in the same order as toBinary when they are the last field", () => {
    const packed = bytesOf(LARGE_BYTES_FIELD + 5, 9);
    const message = create(ReadStreamResponseSchema, { continuation: "next-page", packedItems: packed });
    assert.deepEqual(
      new Uint8Array(encodeMessage(ReadStreamResponseSchema, message)),
      toBinary(ReadStreamResponseSchema, message),
    );
  });

  it("encodes as toBinary does when no bytes field is large", () => {
    const message = create(ReadPageResponseSchema, {
      keyspace: "ks",
      key: "k",
      continuation: "c",
      packedItems: bytesOf(LARGE_BYTES_FIELD - 1, 3),
    });
    assert.deepEqual(
      new Uint8Array(encodeMessage(ReadPageResponseSchema, message)),
      toBinary(ReadPageResponseSchema, message),
    );
  });

  it("leaves the message it encodes unchanged", () => {
    const packed = bytesOf(LARGE_BYTES_FIELD, 1);
    const message = create(ReadPageResponseSchema, { keyspace: "ks", packedItems: packed });
    encodeMessage(ReadPageResponseSchema, message);
    assert.equal(message.packedItems, packed);
    assert.equal(message.keyspace, "ks");
  });
});
