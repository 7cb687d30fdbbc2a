// Where every object klstore keeps lives, and the one codec for data object names. The
// names of data objects are the index: a LIST of a key's folder gives offsets, timestamps
// and nonces of every object without reading any (docs/format.md).

import { encodeSegment } from "./segments.ts";

export const U64_MAX = (1n << 64n) - 1n;
export const I64_MIN = -(1n << 63n);
export const I64_MAX = (1n << 63n) - 1n;
export const U128_MAX = (1n << 128n) - 1n;

const OFFSET_DIGITS = 20;
const DATA_PREFIX = "data_";
const DATA_NAME =
  /^data_o(\d+)-o(\d+)_t(-?\d+)-t(-?\d+)_n(\d+)-n(\d+)_s(\d+)_p(\d+)(?:_g([1-9]\d{0,8}))?\.bin(\.zst)?$/;

export type Compression = "none" | "zstd";

/** Everything a data object's name says about its content. */
export interface DataObjectName {
  readonly firstOffset: bigint;
  readonly lastOffset: bigint;
  readonly minTimestamp: bigint;
  readonly maxTimestamp: bigint;
  /** First nonce in the object, or the key's next nonce before it when it holds none. */
  readonly firstNonce: bigint;
  /** The key's next nonce after this object. */
  readonly nextNonce: bigint;
  /** Bytes stored (after compression). */
  readonly sizeBytes: bigint;
  /** First offset of the object committed just before this one (0 for the first). */
  readonly priorStartOffset: bigint;
  readonly compression: Compression;
  /**
   * The claim generation the batch was committed under, when above 0 (docs/fencing.md): a
   * batch claimed again after a seal holds the same items as the sealed one, and without
   * it would get the seal's very name and never commit.
   */
  readonly generation?: number | undefined;
}

export function padOffset(offset: bigint): string {
  return offset.toString().padStart(OFFSET_DIGITS, "0");
}

export function formatDataObjectName(name: DataObjectName): string {
  const suffix = name.compression === "zstd" ? ".bin.zst" : ".bin";
  return (
    `${DATA_PREFIX}o${padOffset(name.firstOffset)}-o${name.lastOffset}` +
    `_t${name.minTimestamp}-t${name.maxTimestamp}` +
    `_n${name.firstNonce}-n${name.nextNonce}` +
    `_s${name.sizeBytes}_p${name.priorStartOffset}${name.generation ? `_g${name.generation}` : ""}${suffix}`
  );
}

/** Parses the last path segment of a data object; undefined if it is not one. */
export function parseDataObjectName(segment: string): DataObjectName | undefined {
  const m = DATA_NAME.exec(segment);
  if (!m) return undefined;
  const [firstOffset, lastOffset, minTimestamp, maxTimestamp, firstNonce, nextNonce, size, prior] = m
    .slice(1, 9)
    .map((s) => BigInt(s as string)) as [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint];
  const inRange =
    lastOffset <= U64_MAX &&
    firstOffset <= lastOffset &&
    prior <= firstOffset &&
    minTimestamp >= I64_MIN &&
    maxTimestamp <= I64_MAX &&
    nextNonce <= U128_MAX &&
    firstNonce <= nextNonce &&
    size <= U64_MAX;
  if (!inRange) return undefined;
  return {
    firstOffset,
    lastOffset,
    minTimestamp,
    maxTimestamp,
    firstNonce,
    nextNonce,
    sizeBytes: size,
    priorStartOffset: prior,
    compression: m[10] ? "zstd" : "none",
    ...(m[9] ? { generation: Number(m[9]) } : {}),
  };
}

export function itemCount(name: DataObjectName): bigint {
  return name.lastOffset - name.firstOffset + 1n;
}

/**
 * Whether the name's timestamps are in order (minTs <= maxTs). The reference names a merged
 * object by its first input's minimum and its last input's maximum, so a merge of items
 * whose timestamps went back in time can be named min > max: such a name bounds nothing.
 */
export function timestampsOrdered(name: DataObjectName): boolean {
  return name.minTimestamp <= name.maxTimestamp;
}

/**
 * An end marker (docs/format.md, "Trim"): a data object named with size 0 and stored empty,
 * written by a trim that empties a key so that the reference's writer, which reads a key's
 * end from the last object name it lists, recovers the key's next offset and nonce from it.
 * It holds no items; a record needs 40 bytes at least, so no other object is named size 0.
 */
export function isEndMarker(name: DataObjectName): boolean {
  return name.sizeBytes === 0n;
}

/** Object keys of one keyspace, under the store's prefix. */
export class KeyspaceLayout {
  readonly segment: string;
  readonly prefix: string;
  readonly keyspace: string;

  constructor(prefix: string, keyspace: string) {
    this.prefix = prefix;
    this.keyspace = keyspace;
    this.segment = encodeSegment("keyspace", keyspace);
  }

  get configKey(): string {
    return `${this.prefix}${this.segment}_config.ini`;
  }

  /** Folder holding one folder per key. */
  get keysFolder(): string {
    return `${this.prefix}${this.segment}/`;
  }

  key(key: string): KeyLayout {
    return new KeyLayout(this, key);
  }
}

/** Object keys of one key's list. */
export class KeyLayout {
  readonly folder: string;
  readonly keyspaceLayout: KeyspaceLayout;
  readonly key: string;

  constructor(keyspaceLayout: KeyspaceLayout, key: string) {
    this.keyspaceLayout = keyspaceLayout;
    this.key = key;
    this.folder = `${keyspaceLayout.keysFolder}${encodeSegment("key", key)}/`;
  }

  /** LIST prefix that yields exactly the key's data objects. */
  get dataPrefix(): string {
    return `${this.folder}${DATA_PREFIX}`;
  }

  get watermarkKey(): string {
    return `${this.folder}watermark`;
  }

  /** Where the list starts after a trim (format/trim-record.ts). */
  get trimKey(): string {
    return `${this.folder}trim`;
  }

  dataKey(name: DataObjectName): string {
    return `${this.folder}${formatDataObjectName(name)}`;
  }

  /** LIST start-after value whose results are the data objects with firstOffset >= offset. */
  startAfterForFirstOffset(offset: bigint): string {
    return `${this.dataPrefix}o${padOffset(offset)}`;
  }

  /** Prefix of the key's claim objects (fencing, docs/fencing.md). */
  get claimPrefix(): string {
    return `${this.folder}claim_o`;
  }

  claimKey(offset: bigint, generation: number): string {
    return `${this.claimPrefix}${padOffset(offset)}_g${generation}`;
  }

  /** Parses a claim object key of this key; undefined if it is not one. */
  parseClaimKey(objectKey: string): { offset: bigint; generation: number } | undefined {
    if (!objectKey.startsWith(this.claimPrefix)) return undefined;
    const m = /^(\d{20})_g(\d{1,9})$/.exec(objectKey.slice(this.claimPrefix.length));
    if (!m) return undefined;
    return { offset: BigInt(m[1] as string), generation: Number(m[2]) };
  }

  /** The data object name part of a full object key in this key's folder. */
  parseDataKey(objectKey: string): DataObjectName | undefined {
    if (!objectKey.startsWith(this.dataPrefix)) return undefined;
    return parseDataObjectName(objectKey.slice(this.folder.length));
  }
}
