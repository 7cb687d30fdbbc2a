import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ConsumedRecord, numberParser, RecordParseError, stringParser } from "../src/record-parsers.ts";

const record: ConsumedRecord = {
  topic: "t",
  partition: 2,
  offset: 41n,
  key: Buffer.from("user-7"),
  value: Buffer.from("v"),
  headers: new Map([
    ["ks", Buffer.from("orders")],
    ["be", Buffer.from([0x01, 0x02])],
    ["le", Buffer.from([0x01, 0x02])],
    ["u128", Buffer.alloc(16, 0xff)],
    ["dec", Buffer.from(" 1700000000000 ")],
    ["bad-utf8", Buffer.from([0xff, 0xfe])],
    ["not-a-number", Buffer.from("12a")],
    ["too-long", Buffer.alloc(17, 1)],
  ]),
};

describe("record parsers", () => {
  it("parse strings: Static, RecordHeader, RecordKey, RecordPartition", () => {
    assert.equal(stringParser("Static(my_keyspace)")(record), "my_keyspace");
    assert.equal(stringParser("RecordHeader(ks)")(record), "orders");
    assert.equal(stringParser("RecordKey")(record), "user-7");
    assert.equal(stringParser("RecordPartition")(record), "2");
  });

  it("parse numbers in every encoding the seed names", () => {
    assert.equal(numberParser("None")(record), undefined);
    assert.equal(numberParser("RecordHeaderBigEndian(be)")(record), 0x0102n);
    assert.equal(numberParser("RecordHeaderLittleEndian(le)")(record), 0x0201n);
    assert.equal(numberParser("RecordHeaderBigEndian(u128)")(record), (1n << 128n) - 1n);
    assert.equal(numberParser("RecordHeaderUtf8(dec)")(record), 1_700_000_000_000n);
    assert.equal(numberParser("RecordOffset")(record), 41n);
    assert.equal(numberParser("RecordPartition")(record), 2n);
    const keyed = { ...record, key: Buffer.from([0, 0, 1, 0]) };
    assert.equal(numberParser("RecordKeyBigEndian")(keyed), 256n);
    assert.equal(numberParser("RecordKeyLittleEndian")(keyed), 65_536n);
    assert.equal(numberParser("RecordKeyUtf8")({ ...record, key: Buffer.from("99") }), 99n);
  });

  it("report a record they cannot parse as RecordParseError", () => {
    const fails = (parse: () => unknown, message: RegExp) =>
      assert.throws(parse, (err: unknown) => err instanceof RecordParseError && message.test(err.message));
    fails(() => stringParser("RecordHeader(missing)")(record), /header "missing" is missing/);
    fails(() => stringParser("RecordHeader(bad-utf8)")(record), /not UTF-8/);
    fails(() => stringParser("RecordKey")({ ...record, key: undefined }), /no key/);
    fails(() => numberParser("RecordHeaderUtf8(not-a-number)")(record), /"12a" is not an integer/);
    fails(() => numberParser("RecordHeaderBigEndian(too-long)")(record), /17 bytes/);
    fails(() => numberParser("RecordKeyBigEndian")({ ...record, key: Buffer.alloc(0) }), /0 bytes/);
  });

  it("refuse bad specs as configuration errors", () => {
    assert.throws(() => stringParser("Bogus"), /unknown string parser "Bogus" \(known: Static\(s\)/);
    assert.throws(() => numberParser("RecordOfset"), /unknown number parser/);
    assert.throws(() => stringParser("Static()"), /needs an argument/);
    assert.throws(() => numberParser("RecordOffset(x)"), /takes no argument/);
    assert.throws(() => numberParser("RecordHeaderUtf8"), /needs an argument/);
  });
});
