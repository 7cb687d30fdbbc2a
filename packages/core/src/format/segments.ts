// Reversible encoding of keyspace and key names into one safe object-key path segment.
// Plain names ([A-Za-z0-9._-], not starting with '.') are kept as they are, so buckets
// interoperate with the reference implementation; every other byte becomes %XX.

import { InvalidArgument } from "../errors.ts";

/** Path segments longer than this are refused by common filesystems (NAME_MAX). */
export const MAX_SEGMENT_BYTES = 255;

const KEYSPACE_CONFIG_SUFFIX = "_config.ini";

/** A keyspace's config object is its segment plus the suffix, and must fit NAME_MAX too. */
export const MAX_KEYSPACE_SEGMENT_BYTES = MAX_SEGMENT_BYTES - KEYSPACE_CONFIG_SUFFIX.length;

function isPlainByte(byte: number): boolean {
  return (
    (byte >= 0x30 && byte <= 0x39) || // 0-9
    (byte >= 0x41 && byte <= 0x5a) || // A-Z
    (byte >= 0x61 && byte <= 0x7a) || // a-z
    byte === 0x2d || // -
    byte === 0x5f || // _
    byte === 0x2e // .
  );
}

function percent(byte: number): string {
  return `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
}

/**
 * Encodes a name into a segment. A leading '.' is always escaped: it keeps '.', '..' and
 * hidden-file names out of storage paths. For keyspaces the '.' of a trailing
 * "_config.ini" is escaped too, so a keyspace's folder can never collide with another
 * keyspace's config object.
 */
export function encodeSegment(kind: "keyspace" | "key", name: string): string {
  if (typeof name !== "string" || name.length === 0) {
    throw new InvalidArgument(kind, "must be a non-empty string");
  }
  if (!name.isWellFormed()) {
    throw new InvalidArgument(kind, "must be well-formed UTF-8 (no lone surrogates)");
  }
  const bytes = Buffer.from(name, "utf8");
  let out = "";
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i] as number;
    out += isPlainByte(byte) && !(i === 0 && byte === 0x2e) ? String.fromCharCode(byte) : percent(byte);
  }
  if (kind === "keyspace" && out.endsWith(KEYSPACE_CONFIG_SUFFIX)) {
    const dot = out.length - ".ini".length;
    out = `${out.slice(0, dot)}%2E${out.slice(dot + 1)}`;
  }
  const limit = kind === "keyspace" ? MAX_KEYSPACE_SEGMENT_BYTES : MAX_SEGMENT_BYTES;
  if (out.length > limit) {
    throw new InvalidArgument(
      kind,
      `encodes to ${out.length} bytes, over the limit of ${limit} (plain characters take 1 byte, others 3 per UTF-8 byte)`,
    );
  }
  return out;
}

/** Decodes a segment written by encodeSegment; undefined if it is not in canonical form. */
export function decodeSegment(kind: "keyspace" | "key", segment: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < segment.length; i++) {
    const ch = segment.charCodeAt(i);
    if (ch === 0x25) {
      const hex = segment.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (isPlainByte(ch)) {
      bytes.push(ch);
    } else {
      return undefined;
    }
  }
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let name: string;
  try {
    name = decoder.decode(Uint8Array.from(bytes));
  } catch {
    return undefined; // not UTF-8: not a segment klstore wrote
  }
  // Canonical form only: two segments must never decode to the same name.
  try {
    return encodeSegment(kind, name) === segment ? name : undefined;
  } catch {
    return undefined;
  }
}
