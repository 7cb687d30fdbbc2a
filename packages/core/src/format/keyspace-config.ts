// The keyspace config object ({prefix}{keyspace}_config.ini): its existence is the
// keyspace's existence; its [keyspace] section holds the keyspace's settings.

import { parse, stringify } from "ini";
import { CorruptObject } from "../errors.ts";
import type { Compression } from "./layout.ts";

/** How long a keyspace's items are kept; the writers' retention sweep trims the rest. */
export interface Retention {
  /** Items whose timestamp is older than this many ms are trimmed. */
  readonly maxAgeMillis?: bigint | undefined;
  /** Only the newest this many items of each key are kept. */
  readonly maxItems?: bigint | undefined;
}

export interface KeyspaceSettings {
  /** Creation time, ms since epoch. */
  readonly createdMillis: bigint;
  /** Compression of compacted objects; "none" keeps the bucket readable by the reference. */
  readonly compression: Compression;
  /** Absent: items are kept until trimmed explicitly. */
  readonly retention?: Retention | undefined;
}

const RETENTION_FIELDS = [
  ["retention_max_age_millis", "maxAgeMillis"],
  ["retention_max_items", "maxItems"],
] as const;

export function encodeKeyspaceConfig(settings: KeyspaceSettings): Uint8Array {
  const section: Record<string, string> = { created: settings.createdMillis.toString() };
  // Written only when set, so a default keyspace's config is byte-identical to the reference's.
  if (settings.compression !== "none") section.compression = settings.compression;
  for (const [field, property] of RETENTION_FIELDS) {
    const value = settings.retention?.[property];
    if (value !== undefined) section[field] = value.toString();
  }
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
  const retention: { maxAgeMillis?: bigint; maxItems?: bigint } = {};
  for (const [field, property] of RETENTION_FIELDS) {
    const raw = section[field];
    if (raw === undefined) continue;
    if (!/^\d+$/.test(String(raw))) throw new CorruptObject(objectKey, `${field}=${String(raw)} is not a count`);
    retention[property] = BigInt(String(raw));
  }
  return {
    createdMillis: BigInt(created),
    compression,
    retention: Object.keys(retention).length > 0 ? retention : undefined,
  };
}
