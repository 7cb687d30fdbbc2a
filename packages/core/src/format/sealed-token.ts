// The one seal of the opaque tokens clients hand back (continuation tokens, watch cursors):
// the token's bytes, an 8-byte tag of what it is bound to (a key's folder, a keyspace's
// change log), then a CRC-32 of everything before, all in base64url. The CRC refuses a
// damaged or hand-edited token (it catches every single-bit flip and every burst of up to
// 32 bits); the tag refuses one used for another key or keyspace. Neither is a secret: a
// token grants nothing, so a forged one harms only the caller who forged it.

import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";

const TAG_BYTES = 8;
const CRC_BYTES = 4;
/** What the seal adds to a token's body. */
export const SEAL_BYTES = TAG_BYTES + CRC_BYTES;

const BASE64URL = /^[A-Za-z0-9_-]*$/;

function tagOf(boundTo: string): Buffer {
  return createHash("sha256").update(boundTo).digest().subarray(0, TAG_BYTES);
}

export function sealToken(body: Uint8Array, boundTo: string): string {
  const buf = Buffer.alloc(body.length + SEAL_BYTES);
  buf.set(body, 0);
  tagOf(boundTo).copy(buf, body.length);
  buf.writeUInt32LE(crc32(buf.subarray(0, buf.length - CRC_BYTES)), buf.length - CRC_BYTES);
  return buf.toString("base64url");
}

/**
 * A token's bytes (body and seal), or undefined if it is longer than `maxBytes` encode to
 * (checked first, on the string's length), or not exactly what sealToken writes: base64url
 * without padding whose unused low bits are zero. A decoder ignores those bits and a stray
 * last character, so without this a changed character could decode to the same token.
 */
export function tokenBytes(token: unknown, maxBytes: number): Buffer | undefined {
  if (typeof token !== "string" || token.length > Math.ceil((maxBytes * 4) / 3) || !BASE64URL.test(token)) {
    return undefined;
  }
  const bytes = Buffer.from(token, "base64url");
  return bytes.toString("base64url") === token ? bytes : undefined;
}

/** The body of a sealed token, or why the seal refuses it (damaged, or bound to something else). */
export function unsealToken(bytes: Buffer, boundTo: string): Buffer | "damaged" | "bound elsewhere" {
  if (bytes.length < SEAL_BYTES) return "damaged";
  const crcAt = bytes.length - CRC_BYTES;
  if (bytes.readUInt32LE(crcAt) !== crc32(bytes.subarray(0, crcAt))) return "damaged";
  const body = bytes.subarray(0, crcAt - TAG_BYTES);
  if (!bytes.subarray(body.length, crcAt).equals(tagOf(boundTo))) return "bound elsewhere";
  return body;
}
