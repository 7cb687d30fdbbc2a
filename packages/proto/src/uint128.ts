// klstore.v1.Uint128 <-> bigint. Nonces are u128 end to end; the message splits them into
// two uint64 halves so every protobuf language can carry them losslessly.

import { create } from "@bufbuild/protobuf";
import { type Uint128, Uint128Schema } from "./gen/klstore/v1/types_pb.ts";

const U64_MASK = (1n << 64n) - 1n;

/** Undefined stays undefined (the field is unset). Callers validate the range. */
export function toUint128(value: bigint | undefined): Uint128 | undefined {
  if (value === undefined) return undefined;
  return create(Uint128Schema, { high: (value >> 64n) & U64_MASK, low: value & U64_MASK });
}

export function fromUint128(message: Uint128 | undefined): bigint | undefined {
  if (message === undefined) return undefined;
  return (message.high << 64n) | message.low;
}
