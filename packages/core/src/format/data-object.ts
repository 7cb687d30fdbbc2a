// A data object's stored bytes: the record codec, optionally zstd-compressed (marked by the
// name's ".bin.zst" suffix; compaction output only, when the keyspace asks for it).

import { zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { CorruptObject } from "../errors.ts";
import type { Compression, DataObjectName } from "./layout.ts";
import { decodeRecords, encodeRecords, type Item, type RecordInput } from "./records.ts";

export function encodeDataObject(records: readonly RecordInput[], compression: Compression): Uint8Array {
  const raw = encodeRecords(records);
  return compression === "zstd" ? new Uint8Array(zstdCompressSync(raw)) : raw;
}

export function decodeDataObject(objectKey: string, name: DataObjectName, stored: Uint8Array): Item[] {
  if (name.compression === "none") return decodeRecords(objectKey, name, stored);
  if (BigInt(stored.byteLength) !== name.sizeBytes) {
    throw new CorruptObject(objectKey, `holds ${stored.byteLength} bytes, its name says ${name.sizeBytes}`);
  }
  let raw: Buffer;
  try {
    raw = zstdDecompressSync(stored);
  } catch (err) {
    throw new CorruptObject(objectKey, `zstd frame does not decompress (${(err as Error).message})`);
  }
  return decodeRecords(objectKey, { ...name, compression: "none", sizeBytes: BigInt(raw.byteLength) }, raw);
}
