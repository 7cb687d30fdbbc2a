// The keyspace config object ({prefix}{keyspace}_config.ini): its existence is the
// keyspace's existence; its [keyspace] section holds the keyspace's settings.

import { parse, stringify } from "ini";
import { CorruptObject } from "../errors.ts";
import type { Compression } from "./layout.ts";

export interface KeyspaceSettings {
  /** Creation time, ms since epoch. */
  readonly createdMillis: bigint;
  /** Compression of compacted objects; "none" keeps the bucket readable by the reference. */
  readonly compression: Compression;
}

export function encodeKeyspaceConfig(settings: KeyspaceSettings): Uint8Array {
  const section: Record<string, string> = { created: settings.createdMillis.toString() };
  // Written only when set, so a default keyspace's config is byte-identical to the reference's.
  if (settings.compression !== "none") section.compression = settings.compression;
  return Buffer.from(stringify({ keyspace: section }).trimEnd());
}

export function decodeKeyspaceConfig(objectKey: string, bytes: Uint8Array): KeyspaceSettings {
  const parsed = parse(Buffer.from(bytes).toString("utf8")) as { keyspace?: Record<string, unknown> };
  const section = parsed.keyspace ?? {};
  const created = String(section.created ?? "0");
  const compression = String(section.compression ?? "none");
  if (!/^-?\d+$/.test(created)) throw new CorruptObject(objectKey, `created=${created} is not a number`);
  if (compression !== "none" && compression !== "zstd") {
    throw new CorruptObject(objectKey, `compression=${compression} is not none or zstd`);
  }
  return { createdMillis: BigInt(created), compression };
}
