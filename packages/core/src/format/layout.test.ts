import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type DataObjectName,
  formatDataObjectName,
  isEndMarker,
  KeyspaceLayout,
  parseDataObjectName,
  timestampsOrdered,
} from "./layout.ts";

const name: DataObjectName = {
  firstOffset: 1n,
  lastOffset: 5n,
  minTimestamp: 1700000000000n,
  maxTimestamp: 1700000000004n,
  firstNonce: 10n,
  nextNonce: 51n,
  sizeBytes: 230n,
  priorStartOffset: 0n,
  compression: "none",
};

describe("data object names", () => {
  it("match the reference implementation's layout byte for byte", () => {
    assert.equal(
      formatDataObjectName(name),
      "data_o00000000000000000001-o5_t1700000000000-t1700000000004_n10-n51_s230_p0.bin",
    );
  });

  it("round-trip, including negative timestamps, u128 nonces and zstd", () => {
    const odd: DataObjectName = {
      ...name,
      minTimestamp: -5n,
      maxTimestamp: -1n,
      firstNonce: (1n << 127n) + 3n,
      nextNonce: (1n << 128n) - 1n,
      compression: "zstd",
    };
    assert.deepEqual(parseDataObjectName(formatDataObjectName(odd)), odd);
    assert.match(formatDataObjectName(odd), /\.bin\.zst$/);
  });

  it("reject names that are not data objects or are inconsistent", () => {
    assert.equal(parseDataObjectName("watermark"), undefined);
    assert.equal(parseDataObjectName("data_o00000000000000000009-o5_t1-t2_n0-n0_s1_p0.bin"), undefined);
    assert.equal(parseDataObjectName("data_o00000000000000000001-o5_t1-t2_n9-n0_s1_p0.bin"), undefined);
    assert.equal(parseDataObjectName("data_o00000000000000000003-o5_t1-t2_n0-n0_s1_p4.bin"), undefined);
  });

  it("accept timestamps out of order, as the reference names a merge of items that went back in time", () => {
    const merged = parseDataObjectName("data_o00000000000000000001-o6_t1700000000500-t1700000000100_n0-n0_s252_p0.bin");
    assert.equal(merged?.minTimestamp, 1700000000500n);
    assert.equal(merged?.maxTimestamp, 1700000000100n);
    assert.equal(merged && timestampsOrdered(merged), false);
    assert.equal(timestampsOrdered(name), true);
  });

  it("tell an end marker (named size 0) from other objects", () => {
    const marker = parseDataObjectName("data_o00000000000000000001-o49_t490-t490_n1050-n1050_s0_p1.bin");
    assert.ok(marker && isEndMarker(marker));
    assert.equal(isEndMarker(name), false);
  });

  it("sort by first offset as strings, which makes LIST an index", () => {
    const names = [100n, 9n, 10n, 0n].map((o) =>
      formatDataObjectName({ ...name, firstOffset: o, lastOffset: o + 1000n }),
    );
    const sorted = [...names].sort();
    assert.deepEqual(
      sorted.map((n) => parseDataObjectName(n)?.firstOffset),
      [0n, 9n, 10n, 100n],
    );
  });

  it("place a key's objects in one folder under the keyspace", () => {
    const ks = new KeyspaceLayout("pre/", "ks");
    const key = ks.key("a/b");
    assert.equal(ks.configKey, "pre/ks_config.ini");
    assert.equal(key.folder, "pre/ks/a%2Fb/");
    assert.equal(key.watermarkKey, "pre/ks/a%2Fb/watermark");
    assert.deepEqual(key.parseClaimKey(key.claimKey(7n, 2)), { offset: 7n, generation: 2 });
    assert.ok(!key.claimKey(7n, 0).slice(key.folder.length).startsWith("data_"));
  });
});
