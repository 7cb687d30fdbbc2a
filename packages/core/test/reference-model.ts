// What the reference implementation (thill/klstore, Rust) does to a bucket, modelled from
// its source for the interoperability tests: its writer's appends, compaction and key
// recovery (rust/src/s3/writer.rs, rust/src/s3/cache.rs, rust/src/common/items.rs), and its
// reader's key metadata (rust/src/s3/reader.rs). The reference cannot be built here (the
// crate of that name is an empty placeholder), so these tests write and read buckets the
// way its code does, step for step in storage terms: the same LISTs, names and bodies.

import { formatDataObjectName, KeyspaceLayout, padOffset } from "../src/format/layout.ts";
import { encodeRecords, NO_NONCE } from "../src/format/records.ts";
import type { ObjectStore } from "../src/storage/object-store.ts";
import { encodeWatermark, listAll, readWatermark } from "../src/writer/key-state.ts";

export interface ReferenceInsertion {
  readonly value: string;
  readonly timestamp: bigint;
  readonly nonce?: bigint;
}

export interface ReferenceThresholds {
  readonly items: number;
  readonly size: number;
  readonly objects: number;
}

/** The reference's cached state of one key (its CachedKey). */
interface CachedKey {
  nextOffset: bigint;
  nextNonce: bigint;
  prior: bigint;
  watermark: bigint;
  uncompactedItems: number;
  uncompactedSize: number;
  uncompactedObjects: number;
}

const NAME = /data_o(\d+)-o(\d+)_t(-?\d+)-t(-?\d+)_n(\d+)-n(\d+)_s(\d+)_p(\d+)\.bin$/;

export interface ReferenceName {
  readonly first: bigint;
  readonly last: bigint;
  readonly minTs: bigint;
  readonly maxTs: bigint;
  readonly firstNonce: bigint;
  readonly nextNonce: bigint;
  readonly size: bigint;
  readonly prior: bigint;
}

/** The reference's KeyPathParser: it reads only these fields, and fails on any other name. */
export function referenceParse(objectKey: string): ReferenceName {
  const m = NAME.exec(objectKey);
  if (!m) throw new Error(`BadData(invalid key path ${objectKey})`);
  const [first, last, minTs, maxTs, firstNonce, nextNonce, size, prior] = m.slice(1, 9).map((s) => BigInt(s)) as [
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
  ];
  return { first, last, minTs, maxTs, firstNonce, nextNonce, size, prior };
}

/** Plain keyspace and key names: the reference's paths are klstore's (format/segments.ts). */
const keyLayout = (prefix: string, ks: string, key: string) => new KeyspaceLayout(prefix, ks).key(key);

export class ReferenceWriter {
  private readonly cache = new Map<string, CachedKey>();
  private readonly store: ObjectStore;
  private readonly prefix: string;
  private readonly thresholds: ReferenceThresholds;

  constructor(store: ObjectStore, prefix: string, thresholds: ReferenceThresholds) {
    this.store = store;
    this.prefix = prefix;
    this.thresholds = thresholds;
  }

  private dataPrefix(ks: string, key: string): string {
    return keyLayout(this.prefix, ks, key).dataPrefix;
  }

  private watermarkKey(ks: string, key: string): string {
    return keyLayout(this.prefix, ks, key).watermarkKey;
  }

  /** Its key recovery (S3CacheFetcher::load_key): the watermark, then names only. */
  async recover(ks: string, key: string): Promise<CachedKey> {
    const watermark = await readWatermark(this.store, keyLayout(this.prefix, ks, key));
    const startAfter = watermark === undefined ? "" : `${this.dataPrefix(ks, key)}o${padOffset(watermark)}`;
    const listed = await listAll(this.store, this.dataPrefix(ks, key), startAfter);
    const state: CachedKey = {
      nextOffset: 1n,
      nextNonce: 0n,
      prior: 0n,
      watermark: watermark ?? 0n,
      uncompactedItems: 0,
      uncompactedSize: 0,
      uncompactedObjects: 0,
    };
    listed.forEach((o, i) => {
      const p = referenceParse(o.key);
      const count = Number(p.last - p.first + 1n);
      state.nextNonce = p.nextNonce;
      state.nextOffset = p.last + 1n;
      state.prior = p.prior;
      if (!(i === 0 && count >= this.thresholds.items)) {
        state.uncompactedItems += count;
        state.uncompactedSize += Number(p.size);
        state.uncompactedObjects++;
      }
    });
    return state;
  }

  /** append_list: nonce filter, one object per call, then check_compaction. */
  async append(ks: string, key: string, insertions: readonly ReferenceInsertion[]): Promise<void> {
    const k = `${ks}/${key}`;
    const state = this.cache.get(k) ?? (await this.recover(ks, key));
    const firstPotential = state.nextNonce;
    let nextNonce = state.nextNonce;
    let firstNonce: bigint | undefined;
    const kept = insertions.filter((ins) => {
      if (ins.nonce === undefined) return true;
      if (ins.nonce < nextNonce) return false;
      firstNonce ??= ins.nonce;
      nextNonce = ins.nonce + 1n;
      return true;
    });
    if (kept.length === 0) return;
    const records = kept.map((ins, i) => ({
      offset: state.nextOffset + BigInt(i),
      timestamp: ins.timestamp,
      nonce: ins.nonce ?? NO_NONCE,
      value: Buffer.from(ins.value),
    }));
    const body = encodeRecords(records);
    const timestamps = records.map((r) => r.timestamp);
    const first = state.nextOffset;
    const last = state.nextOffset + BigInt(kept.length - 1);
    await this.store.put(
      `${this.prefix}${k}/${this.name(first, last, min(timestamps), max(timestamps), firstNonce ?? firstPotential, nextNonce, body.byteLength, state.prior)}`,
      body,
    );
    state.nextNonce = nextNonce;
    state.nextOffset = last + 1n;
    state.uncompactedItems += kept.length;
    state.uncompactedSize += body.byteLength;
    state.uncompactedObjects++;
    state.prior = first;
    this.cache.set(k, await this.checkCompaction(ks, key, state));
  }

  private name(
    first: bigint,
    last: bigint,
    minTs: bigint,
    maxTs: bigint,
    firstNonce: bigint,
    nextNonce: bigint,
    size: number,
    prior: bigint,
  ): string {
    return formatDataObjectName({
      firstOffset: first,
      lastOffset: last,
      minTimestamp: minTs,
      maxTimestamp: maxTs,
      firstNonce,
      nextNonce,
      sizeBytes: BigInt(size),
      priorStartOffset: prior,
      compression: "none",
    });
  }

  /** check_compaction: merges every object after the watermark's, named by its first and last. */
  private async checkCompaction(ks: string, key: string, state: CachedKey): Promise<CachedKey> {
    const t = this.thresholds;
    if (state.uncompactedItems < t.items && state.uncompactedObjects < t.objects && state.uncompactedSize < t.size) {
      return state;
    }
    const advance = state.uncompactedItems >= t.items || state.uncompactedSize >= t.size;
    // after_watermark_prefix: everything at 0, else the objects starting after the watermark.
    const startAfter =
      state.watermark === 0n
        ? `${this.dataPrefix(ks, key)}o`
        : `${this.dataPrefix(ks, key)}o${padOffset(state.watermark + 1n)}`;
    const inputs = await listAll(this.store, this.dataPrefix(ks, key), startAfter);
    const firstKey = referenceParse((inputs[0] as { key: string }).key);
    const lastKey = referenceParse((inputs.at(-1) as { key: string }).key);
    if (inputs.length === 1) {
      await this.store.put(this.watermarkKey(ks, key), encodeWatermark(firstKey.first));
      return { ...state, uncompactedItems: 0, uncompactedObjects: 0, uncompactedSize: 0, watermark: firstKey.first };
    }
    const bodies: Uint8Array[] = [];
    for (const o of inputs) {
      const stored = await this.store.get(o.key);
      if (!stored) throw new Error(`BadData(object not found ${o.key})`);
      bodies.push(stored.body);
    }
    const body = Buffer.concat(bodies);
    await this.store.put(
      `${this.prefix}${ks}/${key}/${this.name(firstKey.first, lastKey.last, firstKey.minTs, lastKey.maxTs, firstKey.firstNonce, lastKey.nextNonce, body.byteLength, firstKey.prior)}`,
      body,
    );
    for (const o of inputs) await this.store.delete([o.key]);
    if (advance) {
      await this.store.put(this.watermarkKey(ks, key), encodeWatermark(firstKey.first));
      return {
        ...state,
        uncompactedItems: 0,
        uncompactedObjects: 0,
        uncompactedSize: 0,
        prior: firstKey.first,
        watermark: firstKey.first,
      };
    }
    return { ...state, uncompactedObjects: 1, prior: firstKey.first };
  }
}

/**
 * The reference reader's read_key_metadata: the last name listed from the watermark (or of
 * the whole key); a watermark with no object from it on is an error; no object, no key.
 */
export async function referenceKeyMetadata(
  store: ObjectStore,
  prefix: string,
  ks: string,
  key: string,
): Promise<{ nextOffset: bigint; nextNonce: bigint } | undefined> {
  const layout = keyLayout(prefix, ks, key);
  const dataPrefix = layout.dataPrefix;
  const watermark = await readWatermark(store, layout);
  const startAfter = watermark === undefined ? "" : `${dataPrefix}o${padOffset(watermark)}-`;
  const last = (await listAll(store, dataPrefix, startAfter)).at(-1);
  if (!last) {
    if (watermark !== undefined) throw new Error(`IOError(${layout.watermarkKey} is not pointing to any data)`);
    return undefined;
  }
  const p = referenceParse(last.key);
  return { nextOffset: p.last + 1n, nextNonce: p.nextNonce };
}

/**
 * The offsets the reference's forward read from the start serves (collect.rs): objects in
 * name order from the first whose name matches its default filter (next nonce above 0: the
 * tests' keys carry nonces, so the first object), each read whole; an object starting after
 * the offset it expects next ends the read (it takes that for a concurrent compaction).
 */
export async function referenceForwardOffsets(
  store: ObjectStore,
  prefix: string,
  ks: string,
  key: string,
): Promise<bigint[]> {
  const listed = await listAll(store, keyLayout(prefix, ks, key).dataPrefix, "");
  const offsets: bigint[] = [];
  let next: bigint | undefined;
  for (const o of listed) {
    const p = referenceParse(o.key);
    if (next !== undefined && next < p.first) break;
    const stored = await store.get(o.key);
    const body = stored?.body ?? new Uint8Array(0);
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    for (let pos = 0; pos < body.byteLength; ) {
      const offset = view.getBigUint64(pos, true);
      if (next === undefined || offset >= next) offsets.push(offset);
      pos += 40 + view.getUint32(pos + 32, true);
    }
    next = p.last + 1n;
  }
  return offsets;
}

function min(values: readonly bigint[]): bigint {
  return values.reduce((a, b) => (b < a ? b : a));
}

function max(values: readonly bigint[]): bigint {
  return values.reduce((a, b) => (b > a ? b : a));
}
