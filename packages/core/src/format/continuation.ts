// Continuation tokens: opaque to clients, versioned and validated here. A token says where
// the next page starts (an offset and the first offset of the object holding it, so the
// next page costs one LIST) and is bound to its key and direction.

import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { InvalidArgument } from "../errors.ts";

const VERSION = 1;
const BYTES = 1 + 1 + 8 + 8 + 8 + 4;

export type IterationOrder = "forwards" | "backwards";

export interface Continuation {
  readonly order: IterationOrder;
  /** Offset of the next item to return. */
  readonly nextOffset: bigint;
  /** First offset of an object at or before the one holding nextOffset. */
  readonly hint: bigint;
}

function keyTag(keyFolder: string): Buffer {
  return createHash("sha256").update(keyFolder).digest().subarray(0, 8);
}

export function encodeContinuation(keyFolder: string, c: Continuation): string {
  const buf = Buffer.alloc(BYTES);
  buf.writeUInt8(VERSION, 0);
  buf.writeUInt8(c.order === "forwards" ? 0 : 1, 1);
  buf.writeBigUInt64LE(c.nextOffset, 2);
  buf.writeBigUInt64LE(c.hint, 10);
  keyTag(keyFolder).copy(buf, 18);
  buf.writeUInt32LE(crc32(buf.subarray(0, BYTES - 4)), BYTES - 4);
  return buf.toString("base64url");
}

export function decodeContinuation(keyFolder: string, order: IterationOrder, token: string): Continuation {
  const bad = (reason: string) => new InvalidArgument("continuation", reason);
  if (typeof token !== "string" || !/^[A-Za-z0-9_-]+$/.test(token)) throw bad("not a token this service issued");
  const buf = Buffer.from(token, "base64url");
  if (buf.length !== BYTES) throw bad("not a token this service issued");
  if (buf.readUInt8(0) !== VERSION) throw bad(`token version ${buf.readUInt8(0)} is not supported`);
  if (buf.readUInt32LE(BYTES - 4) !== crc32(buf.subarray(0, BYTES - 4))) throw bad("token is damaged");
  if (!buf.subarray(18, 26).equals(keyTag(keyFolder))) throw bad("token belongs to another key");
  const tokenOrder: IterationOrder = buf.readUInt8(1) === 0 ? "forwards" : "backwards";
  if (tokenOrder !== order) throw bad(`token continues a ${tokenOrder} read, the request is ${order}`);
  return { order: tokenOrder, nextOffset: buf.readBigUInt64LE(2), hint: buf.readBigUInt64LE(10) };
}
