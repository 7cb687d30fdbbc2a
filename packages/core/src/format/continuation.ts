// Continuation tokens: opaque to clients, versioned and validated here. A token says where
// the next page starts (an offset and the first offset of the object holding it, so the
// next page costs one LIST) and is bound to its key and direction (sealed-token.ts).

import { InvalidArgument } from "../errors.ts";
import { SEAL_BYTES, sealToken, tokenBytes, unsealToken } from "./sealed-token.ts";

const VERSION = 1;
const BODY_BYTES = 1 + 1 + 8 + 8;
const BYTES = BODY_BYTES + SEAL_BYTES;

export type IterationOrder = "forwards" | "backwards";

export interface Continuation {
  readonly order: IterationOrder;
  /** Offset of the next item to return. */
  readonly nextOffset: bigint;
  /** First offset of an object at or before the one holding nextOffset. */
  readonly hint: bigint;
}

export function encodeContinuation(keyFolder: string, c: Continuation): string {
  const body = Buffer.alloc(BODY_BYTES);
  body.writeUInt8(VERSION, 0);
  body.writeUInt8(c.order === "forwards" ? 0 : 1, 1);
  body.writeBigUInt64LE(c.nextOffset, 2);
  body.writeBigUInt64LE(c.hint, 10);
  return sealToken(body, keyFolder);
}

export function decodeContinuation(keyFolder: string, order: IterationOrder, token: string): Continuation {
  const bad = (reason: string) => new InvalidArgument("continuation", reason);
  const buf = tokenBytes(token, BYTES);
  if (buf?.length !== BYTES) throw bad("not a token this service issued");
  if (buf.readUInt8(0) !== VERSION) throw bad(`token version ${buf.readUInt8(0)} is not supported`);
  const body = unsealToken(buf, keyFolder);
  if (body === "damaged") throw bad("token is damaged");
  if (body === "bound elsewhere") throw bad("token belongs to another key");
  const tokenOrder: IterationOrder = body.readUInt8(1) === 0 ? "forwards" : "backwards";
  if (tokenOrder !== order) throw bad(`token continues a ${tokenOrder} read, the request is ${order}`);
  return { order: tokenOrder, nextOffset: body.readBigUInt64LE(2), hint: body.readBigUInt64LE(10) };
}
