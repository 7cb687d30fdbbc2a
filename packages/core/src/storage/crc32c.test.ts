// The native CRC32C gives the checksum S3 expects: the standard check value, and the
// same digest however the input is split into chunks.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Crc32cChecksum } from "./crc32c.ts";

async function digestHex(chunks: readonly string[]): Promise<string> {
  const crc = new Crc32cChecksum();
  for (const c of chunks) crc.update(Buffer.from(c));
  return Buffer.from(await crc.digest()).toString("hex");
}

describe("Crc32cChecksum", () => {
  it("gives CRC32C's check value for 123456789, big-endian", async () => {
    assert.equal(await digestHex(["123456789"]), "e3069283");
  });

  it("does not depend on how the input is chunked, and starts over after reset", async () => {
    assert.equal(await digestHex(["1234", "", "56789"]), "e3069283");
    const crc = new Crc32cChecksum();
    crc.update(Buffer.from("something else"));
    crc.reset();
    crc.update(Buffer.from("123456789"));
    assert.equal(Buffer.from(await crc.digest()).toString("hex"), "e3069283");
  });
});
