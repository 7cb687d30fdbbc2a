// A forward page downloads the objects it is certain to need in parallel (up to 4 ahead)
// while it decodes the current one, and never fetches one it then does not use.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { StoreReader } from "../src/reader/store-reader.ts";
import type { ObjectStore } from "../src/storage/object-store.ts";
import { StoreWriter } from "../src/writer/store-writer.ts";
import { fileBackend } from "./backends.ts";

/** A store whose GETs take 20 ms, recording how many run at once and which keys were fetched. */
function slowGets(store: ObjectStore) {
  const fetched: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const wrapped: ObjectStore = {
    description: store.description,
    async get(key) {
      fetched.push(key);
      maxRunning = Math.max(maxRunning, ++running);
      try {
        await sleep(20);
        return await store.get(key);
      } finally {
        running--;
      }
    },
    put: (k, b, o) => store.put(k, b, o),
    delete: (k) => store.delete(k),
    list: (p, o) => store.list(p, o),
    listFolders: (p) => store.listFolders(p),
    close: () => store.close(),
  };
  return { wrapped, fetched, maxRunning: () => maxRunning };
}

describe("forward read-ahead", () => {
  it("fetches the objects a page needs in parallel, and no others", async () => {
    const { store, prefix, cleanup } = await fileBackend.open();
    try {
      const writer = new StoreWriter({ store, prefix });
      await writer.createKeyspace("ks");
      // 12 objects of 10 items each (no compaction at these sizes).
      for (let o = 0; o < 12; o++) {
        await writer.appendList(
          "ks",
          "k",
          Array.from({ length: 10 }, (_, j) => ({ value: Buffer.from(`v${o * 10 + j}`) })),
        );
      }
      await writer.close();
      const slow = slowGets(store);
      const reader = new StoreReader({ store: slow.wrapped, prefix });
      // Items 5..64: the tail of object 0, objects 1..5, and 5 items of object 6.
      const page = await reader.readPage("ks", "k", { maxSize: 60, filter: { startOffset: 5n } });
      assert.deepEqual(
        page.items.map((i) => Number(i.offset)),
        Array.from({ length: 60 }, (_, i) => i + 5),
      );
      const dataGets = slow.fetched.filter((k) => k.includes("/data_"));
      assert.equal(dataGets.length, 7, "objects 0..6, each once, none beyond");
      assert.equal(new Set(dataGets).size, 7);
      assert.ok(slow.maxRunning() > 1, `GETs overlapped (at most ${slow.maxRunning()} at once)`);
    } finally {
      await cleanup();
    }
  });
});
