import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Uint128Schema } from "./gen/klstore/v1/types_pb.ts";
import { fromUint128, toUint128 } from "./uint128.ts";

describe("Uint128", () => {
  it("carries every u128 losslessly through the wire format", () => {
    for (const v of [0n, 1n, (1n << 64n) - 1n, 1n << 64n, (1n << 128n) - 2n, 0x0123456789abcdef_fedcba9876543210n]) {
      const wire = toBinary(Uint128Schema, toUint128(v) ?? assert.fail());
      assert.equal(fromUint128(fromBinary(Uint128Schema, wire)), v);
    }
    assert.equal(toUint128(undefined), undefined);
    assert.equal(fromUint128(undefined), undefined);
  });
});
