import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { BadRequestSchema } from "./gen/google/rpc/error_details_pb.ts";
import { AppendSessionRequestSchema } from "./gen/klstore/v1/writer_pb.ts";
import { decodeRequest, MalformedRequest } from "./request-decoding.ts";

const NOT_UTF8 = new Uint8Array([0x61, 0xff, 0x62]);

function malformed(decoded: unknown): MalformedRequest {
  assert.ok(decoded instanceof MalformedRequest, "decoding reports a malformed request");
  return decoded;
}

describe("request decoding", () => {
  it("decodes a valid request as fromBinary does", () => {
    const request = create(AppendSessionRequestSchema, { sequence: 7n, keyspace: "ks", key: "ü" });
    const decoded = decodeRequest(AppendSessionRequestSchema, toBinary(AppendSessionRequestSchema, request));
    assert.ok(!(decoded instanceof MalformedRequest));
    assert.equal(decoded.key, "ü");
    assert.equal(decoded.sequence, 7n);
  });

  it("names a top-level string that is not UTF-8 and decodes the rest", () => {
    const w = new BinaryWriter();
    w.tag(1, WireType.Varint).uint64(42n);
    w.tag(2, WireType.LengthDelimited).string("ks");
    w.tag(3, WireType.LengthDelimited).bytes(NOT_UTF8);
    const m = malformed(decodeRequest(AppendSessionRequestSchema, w.finish()));
    assert.equal(m.field, "key");
    assert.equal(m.reason, "not valid UTF-8");
    const partial = m.partial as { sequence: bigint; keyspace: string; key: string };
    assert.deepEqual([partial.sequence, partial.keyspace, partial.key], [42n, "ks", ""]);
  });

  it("names the first of several bad strings and still decodes what is left", () => {
    const w = new BinaryWriter();
    w.tag(2, WireType.LengthDelimited).bytes(NOT_UTF8);
    w.tag(3, WireType.LengthDelimited).bytes(NOT_UTF8);
    w.tag(1, WireType.Varint).uint64(5n);
    const m = malformed(decodeRequest(AppendSessionRequestSchema, w.finish()));
    assert.equal(m.field, "keyspace");
    assert.equal((m.partial as { sequence: bigint }).sequence, 5n);
  });

  it("names a nested repeated string by its path", () => {
    const w = new BinaryWriter();
    w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string("fine").join();
    w.tag(1, WireType.LengthDelimited).fork().tag(2, WireType.LengthDelimited).bytes(NOT_UTF8).join();
    const m = malformed(decodeRequest(BadRequestSchema, w.finish()));
    assert.equal(m.field, "field_violations[1].description");
    assert.equal(m.reason, "not valid UTF-8");
  });

  it("names a field cut short by the end of the message, or sent with the wrong wire type", () => {
    const w = new BinaryWriter();
    w.tag(1, WireType.Varint).uint64(9n);
    w.tag(2, WireType.LengthDelimited)
      .uint32(50)
      .raw(new Uint8Array([0x61]));
    const cut = malformed(decodeRequest(AppendSessionRequestSchema, w.finish()));
    assert.equal(cut.field, "keyspace");
    assert.match(cut.reason, /not valid protobuf/);
    assert.equal((cut.partial as { sequence: bigint }).sequence, 9n);

    const wrongType = new BinaryWriter().tag(3, WireType.Varint).uint32(0x7fffffff).finish();
    // protobuf-es reads the varint as a string's length, past the end.
    const m = malformed(decodeRequest(AppendSessionRequestSchema, wrongType));
    assert.equal(m.field, "key");
    assert.match(m.reason, /wire type 0/);
  });

  it("leaves a defect it cannot place unnamed", () => {
    const m = malformed(decodeRequest(AppendSessionRequestSchema, new Uint8Array([0x07])));
    assert.equal(m.field, undefined);
    assert.match(m.reason, /not valid protobuf/);
  });
});
