// A page is bounded by bytes as well as items: large values must not make a page that no
// gRPC message (64 MiB) or reader memory can hold. A full page by bytes still carries a
// continuation, and reading on from it gives every item once, in order; a full page that
// ends the list carries none. A request may lower the byte bound for its own page.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StoreReader } from "../src/reader/store-reader.ts";
import { StoreWriter } from "../src/writer/store-writer.ts";
import { fileBackend } from "./backends.ts";

const VALUE_BYTES = 3000;

describe("page limits", () => {
  it("ends a page before its values pass max_page_bytes, forwards and backwards, and reads on from it", async () => {
    const { store, prefix, cleanup } = await fileBackend.open();
    try {
      const writer = new StoreWriter({ store, prefix, config: { changeLog: false } });
      await writer.createKeyspace("ks");
      // 20 items of 3 KB in 4 objects, and one item larger than a page's byte limit.
      for (let o = 0; o < 4; o++) {
        await writer.appendList(
          "ks",
          "k",
          Array.from({ length: 5 }, (_, j) => ({ value: Buffer.alloc(VALUE_BYTES, 5 * o + j) })),
        );
      }
      await writer.appendList("ks", "k", [{ value: Buffer.alloc(15_000, 20) }]);
      const reader = new StoreReader({ store, prefix, config: { maxPageBytes: 10_000 } });

      for (const order of ["forwards", "backwards"] as const) {
        const sizes: number[] = [];
        const offsets: bigint[] = [];
        let continuation: string | undefined;
        do {
          const page = await reader.readPage("ks", "k", { order, maxSize: 100, continuation });
          sizes.push(page.items.length);
          for (const item of page.items) {
            assert.equal(item.value[0], Number(item.offset), `offset ${item.offset} holds its own value`);
            offsets.push(item.offset);
          }
          const bytes = page.items.reduce((sum, i) => sum + i.value.byteLength, 0);
          assert.ok(page.items.length === 1 || bytes <= 10_000, `${order}: a page of ${bytes} bytes`);
          continuation = page.continuation;
        } while (continuation);
        const all = Array.from({ length: 21 }, (_, i) => BigInt(i));
        assert.deepEqual(offsets, order === "forwards" ? all : all.reverse(), `${order}: every item once, in order`);
        // 3 items of 3 KB fit 10 KB, a 4th would not; the large item is a page alone.
        const expected = order === "forwards" ? [3, 3, 3, 3, 3, 3, 2, 1] : [1, 3, 3, 3, 3, 3, 3, 2];
        assert.deepEqual(sizes, expected, `${order}: items per page`);
      }

      // The item limit still applies below the byte limit.
      const small = await reader.readPage("ks", "k", { maxSize: 2 });
      assert.deepEqual(
        small.items.map((i) => i.offset),
        [0n, 1n],
      );
      assert.ok(small.continuation);

      // A request's max_bytes lowers the byte limit for its page (a stream bounding what it
      // holds), never raises it, and is refused when it is not a positive integer.
      const lowered = await reader.readPage("ks", "k", { maxSize: 100, maxBytes: 7000 });
      assert.deepEqual(
        lowered.items.map((i) => i.offset),
        [0n, 1n],
      );
      const capped = await reader.readPage("ks", "k", { maxSize: 100, maxBytes: 1_000_000 });
      assert.equal(capped.items.length, 3, "max_page_bytes still bounds the page");
      const single = await reader.readPage("ks", "k", { maxSize: 100, maxBytes: 1 });
      assert.equal(single.items.length, 1, "the first item is taken whatever its size");
      await assert.rejects(reader.readPage("ks", "k", { maxBytes: 0 }), {
        code: "INVALID_ARGUMENT",
        field: "max_bytes",
      });
    } finally {
      await cleanup();
    }
  });

  it("ends on the last page when the page size divides the list, rather than with an empty page", async () => {
    const { store, prefix, cleanup } = await fileBackend.open();
    try {
      const writer = new StoreWriter({ store, prefix, config: { changeLog: false } });
      await writer.createKeyspace("ks");
      // 12 items in 3 objects of 4.
      for (let o = 0; o < 3; o++) {
        await writer.appendList(
          "ks",
          "k",
          Array.from({ length: 4 }, (_, j) => ({ value: Buffer.from([4 * o + j]) })),
        );
      }
      const pagesOf = async (reader: StoreReader, order: "forwards" | "backwards", maxSize: number) => {
        const sizes: number[] = [];
        let continuation: string | undefined;
        do {
          const page = await reader.readPage("ks", "k", { order, maxSize, continuation });
          sizes.push(page.items.length);
          continuation = page.continuation;
        } while (continuation);
        return sizes;
      };
      const reader = new StoreReader({ store, prefix });
      for (const order of ["forwards", "backwards"] as const) {
        assert.deepEqual(await pagesOf(reader, order, 4), [4, 4, 4], `${order}, pages of 4`);
        assert.deepEqual(await pagesOf(reader, order, 6), [6, 6], `${order}, pages of 6`);
        assert.deepEqual(await pagesOf(reader, order, 12), [12], `${order}, one page of 12`);
        assert.deepEqual(await pagesOf(reader, order, 5), [5, 5, 2], `${order}, pages of 5`);
      }
      // Forwards, the end is known from a LIST that was not cut short: with listings of 2
      // objects, a page that ends with the first listing's last object goes on.
      const cutListing = new StoreReader({ store, prefix, config: { listPageSize: 2 } });
      assert.deepEqual(await pagesOf(cutListing, "forwards", 4), [4, 4, 4]);
      assert.deepEqual(await pagesOf(cutListing, "forwards", 8), [8, 4]);
      assert.deepEqual(await pagesOf(cutListing, "forwards", 12), [12]);
    } finally {
      await cleanup();
    }
  });
});
