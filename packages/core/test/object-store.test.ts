// The ObjectStore contract, run against every backend: the filesystem, and SeaweedFS when
// KLSTORE_TEST_S3_ENDPOINT is set (scripts/test.sh sets it).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PreconditionFailed, readRange } from "../src/storage/object-store.ts";
import { backends } from "./backends.ts";

for (const backend of backends()) {
  describe(`object store contract (${backend.name})`, () => {
    it("puts, gets, lists in byte order with start-after and max-keys, and deletes", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const keys = ["a/data_o2", "a/data_o10", "a/data_o1", "a/watermark", "b/x"].map((k) => `${prefix}${k}`);
        for (const k of keys) await store.put(k, Buffer.from(k));
        assert.equal(Buffer.from((await store.get(keys[0] as string))?.body ?? []).toString(), keys[0]);
        assert.equal(await store.get(`${prefix}a/missing`), undefined);
        const all = await store.list(`${prefix}a/data_`);
        assert.deepEqual(
          all.objects.map((o) => o.key.slice(prefix.length)),
          ["a/data_o1", "a/data_o10", "a/data_o2"],
        );
        assert.equal(all.objects[0]?.size, `${prefix}a/data_o1`.length);
        const page = await store.list(`${prefix}a/data_`, { startAfter: `${prefix}a/data_o1`, maxKeys: 1 });
        assert.deepEqual(
          page.objects.map((o) => o.key.slice(prefix.length)),
          ["a/data_o10"],
        );
        assert.equal(page.truncated, true);
        assert.deepEqual(await store.listFolders(prefix), ["a", "b"]);
        await store.delete([keys[0] as string, `${prefix}a/never-existed`]);
        assert.equal(await store.get(keys[0] as string), undefined);
      } finally {
        await cleanup();
      }
    });

    it("reads byte ranges of an object, clipped at its end", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        assert.ok(store.getRange, "the backend reads ranges");
        const key = `${prefix}r/segment`;
        await store.put(key, Buffer.from("0123456789"));
        const text = async (start: number, end?: number) => {
          const got = await readRange(store, key, start, end);
          return got && Buffer.from(got.body).toString();
        };
        assert.equal(await text(0, 4), "0123");
        assert.equal(await text(3, 7), "3456");
        assert.equal(await text(6), "6789");
        assert.equal(await text(8, 100), "89");
        assert.equal(await text(10, 20), "");
        assert.equal(await text(4, 4), "");
        assert.equal(await readRange(store, `${prefix}r/missing`, 0, 4), undefined);
      } finally {
        await cleanup();
      }
    });

    it("lets exactly one of 16 racing conditional creates win", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const key = `${prefix}race/claim`;
        const results = await Promise.allSettled(
          Array.from({ length: 16 }, (_, i) => store.put(key, Buffer.from(`writer-${i}`), { ifNoneMatch: true })),
        );
        const winners = results.filter((r) => r.status === "fulfilled");
        assert.equal(winners.length, 1);
        for (const r of results) {
          if (r.status === "rejected") assert.ok(r.reason instanceof PreconditionFailed, String(r.reason));
        }
        const stored = Buffer.from((await store.get(key))?.body ?? []).toString();
        assert.match(stored, /^writer-\d+$/);
      } finally {
        await cleanup();
      }
    });

    it("stores an empty object and reports its size as 0", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        await store.put(`${prefix}e/empty`, new Uint8Array(0), { ifNoneMatch: true });
        const listed = await store.list(`${prefix}e/`);
        assert.deepEqual(
          listed.objects.map((o) => o.size),
          [0],
        );
        assert.equal((await store.get(`${prefix}e/empty`))?.body.byteLength, 0);
      } finally {
        await cleanup();
      }
    });
  });
}
