// Bad input, from callers and from storage: each gets a clear error with the right code,
// and nothing stored is damaged by it.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CorruptObject, InvalidArgument, KeyspaceNotFound, type KlstoreError } from "../src/errors.ts";
import { encodeContinuation } from "../src/format/continuation.ts";
import { I64_MAX, I64_MIN, KeyspaceLayout } from "../src/format/layout.ts";
import type { Item } from "../src/format/records.ts";
import { StoreReader } from "../src/reader/store-reader.ts";
import type { ObjectStore } from "../src/storage/object-store.ts";
import { StoreWriter } from "../src/writer/store-writer.ts";
import { backends } from "./backends.ts";

const U128 = 1n << 128n;
const values = (...v: string[]) => v.map((s) => ({ value: Buffer.from(s) }));
const text = (items: readonly Item[]) => items.map((i) => Buffer.from(i.value).toString());

function invalid(field: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof InvalidArgument, `InvalidArgument, got ${String(err)}`);
    assert.equal(err.code, "INVALID_ARGUMENT");
    assert.match(err.field, field);
    return true;
  };
}

function dataLoss(objectKey: string) {
  return (err: unknown) => {
    assert.ok(err instanceof CorruptObject, `CorruptObject, got ${String(err)}`);
    assert.equal((err as KlstoreError).code, "DATA_LOSS");
    assert.equal(err.objectKey, objectKey);
    assert.ok(err.message.includes(objectKey), "the message names the object");
    return true;
  };
}

async function snapshot(store: ObjectStore, prefix: string): Promise<Map<string, string>> {
  const all = new Map<string, string>();
  let startAfter: string | undefined;
  for (;;) {
    const page = await store.list(prefix, { startAfter });
    for (const o of page.objects) {
      const obj = await store.get(o.key);
      all.set(o.key, Buffer.from(obj?.body ?? []).toString("hex"));
    }
    const last = page.objects.at(-1);
    if (!page.truncated || !last) return all;
    startAfter = last.key;
  }
}

for (const backend of backends()) {
  describe(`bad input (${backend.name})`, () => {
    async function setup() {
      const opened = await backend.open();
      const { store, prefix } = opened;
      const writer = new StoreWriter({
        store,
        prefix,
        config: { maxValueBytes: 16, maxItemsPerAppend: 4, compactObjectsThreshold: 1000 },
      });
      const reader = new StoreReader({ store, prefix, config: { maxPageItems: 50 } });
      await writer.createKeyspace("ks");
      for (const v of ["a", "b", "c"]) await writer.appendList("ks", "k", values(v));
      const layout = new KeyspaceLayout(prefix, "ks").key("k");
      const objects = (await store.list(layout.dataPrefix)).objects.map((o) => o.key);
      return { ...opened, writer, reader, layout, objects };
    }

    it("refuses bad names, values, nonces and item counts, storing nothing", async () => {
      const { store, prefix, writer, cleanup } = await setup();
      try {
        const before = await snapshot(store, prefix);
        await assert.rejects(writer.createKeyspace(""), invalid(/^keyspace$/));
        // Its config object "{name}_config.ini" would pass NAME_MAX on a filesystem.
        await assert.rejects(writer.createKeyspace("s".repeat(245)), invalid(/^keyspace$/));
        await assert.rejects(writer.appendList("ks", "", values("x")), invalid(/^key$/));
        await assert.rejects(writer.appendList("ks", "k".repeat(300), values("x")), invalid(/^key$/));
        await assert.rejects(writer.appendList("ks", "\ud800", values("x")), invalid(/^key$/));
        await assert.rejects(writer.appendList("ks", "k", values("x".repeat(17))), invalid(/^items\[0\]\.value$/));
        await assert.rejects(
          writer.appendList("ks", "k", [...values("ok"), { value: Buffer.from("x"), nonce: -1n }]),
          invalid(/^items\[1\]\.nonce$/),
        );
        await assert.rejects(
          writer.appendList("ks", "k", [{ value: Buffer.from("x"), nonce: U128 }]),
          invalid(/^items\[0\]\.nonce$/),
        );
        // 2^128-2 would make the key's next nonce the reserved "no nonce" 2^128-1.
        for (const nonce of [U128 - 1n, U128 - 2n]) {
          await assert.rejects(
            writer.appendList("ks", "k", [{ value: Buffer.from("x"), nonce }]),
            invalid(/^items\[0\]\.nonce$/),
            String(nonce),
          );
        }
        await assert.rejects(writer.appendList("ks", "k", values("1", "2", "3", "4", "5")), invalid(/^items$/));
        await assert.rejects(
          writer.appendList("ks", "k", [{ value: "not bytes" as unknown as Uint8Array }]),
          invalid(/value/),
        );
        await assert.rejects(writer.appendList("nope", "k", values("x")), KeyspaceNotFound);
        assert.deepEqual(await snapshot(store, prefix), before, "storage is unchanged");
        // The largest allowed value and nonce still go in.
        const [outcome] = await writer.appendList("ks", "k", [{ value: Buffer.alloc(16), nonce: U128 - 3n }]);
        assert.deepEqual(outcome?.kind, "appended");
        const [after] = await writer.appendList("ks", "k", [{ value: Buffer.from("y"), nonce: U128 - 3n }]);
        assert.deepEqual(after?.kind, "duplicate", "the next nonce is 2^128-2, below the reserved value");
        // So does the longest keyspace name, and a key under it.
        await writer.createKeyspace("s".repeat(244));
        const [longest] = await writer.appendList("s".repeat(244), "k".repeat(255), values("x"));
        assert.deepEqual(longest?.kind, "appended");
      } finally {
        await cleanup();
      }
    });

    it("refuses timestamps more than max_future_timestamp_millis ahead of the writer's clock", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const now = 1_700_000_000_000n;
        const writer = new StoreWriter({
          store,
          prefix,
          config: { maxFutureTimestampMillis: 60_000, clock: () => now, changeLog: false },
        });
        await writer.createKeyspace("ks");
        const before = await snapshot(store, prefix);
        for (const timestamp of [I64_MAX, now + 60_001n]) {
          await assert.rejects(
            writer.appendList("ks", "k", [...values("ok"), { value: Buffer.from("x"), timestamp }]),
            invalid(/^items\[1\]\.timestamp$/),
            String(timestamp),
          );
        }
        assert.deepEqual(await snapshot(store, prefix), before, "storage is unchanged");
        // At the bound, and anything in the past, still go in; later items are not pinned.
        const stored = await writer.appendList("ks", "k", [
          { value: Buffer.from("a"), timestamp: now + 60_000n },
          { value: Buffer.from("b"), timestamp: I64_MIN },
        ]);
        assert.deepEqual(
          stored.map((o) => o.kind === "appended" && o.timestamp),
          [now + 60_000n, now + 60_000n],
        );
      } finally {
        await cleanup();
      }
    });

    it("refuses malformed, damaged and foreign continuation tokens and bad page requests", async () => {
      const { reader, layout, cleanup } = await setup();
      try {
        const first = await reader.readPage("ks", "k", { maxSize: 1 });
        const token = first.continuation as string;
        assert.ok(token);
        const flipped = Buffer.from(token, "base64url");
        flipped[3] = (flipped[3] as number) ^ 1;
        const foreign = encodeContinuation(`${layout.folder}other/`, { order: "forwards", nextOffset: 1n, hint: 0n });
        for (const bad of ["", "!!!", "AAAA", token.slice(0, -2), flipped.toString("base64url"), foreign]) {
          await assert.rejects(reader.readPage("ks", "k", { continuation: bad }), invalid(/^continuation$/), bad);
        }
        await assert.rejects(
          reader.readPage("ks", "k", { continuation: token, order: "backwards" }),
          invalid(/^continuation$/),
        );
        await assert.rejects(reader.readPage("ks", "k", { maxSize: 0 }), invalid(/^max_size$/));
        await assert.rejects(reader.readPage("ks", "k", { maxSize: 51 }), invalid(/^max_size$/));
        await assert.rejects(reader.readPage("ks", "k", { filter: { startNonce: U128 } }), invalid(/start_nonce/));
        await assert.rejects(reader.readPage("ks", "k", { filter: { startOffset: -1n } }), invalid(/start_offset/));
        await assert.rejects(reader.readPage("ks", "", {}), invalid(/^key$/));
        // A missing keyspace is NOT_FOUND; a key never written is an empty list.
        await assert.rejects(reader.readPage("nope", "k"), KeyspaceNotFound);
        await assert.rejects(reader.readKeyMetadata("nope", "k"), KeyspaceNotFound);
        assert.deepEqual((await reader.readPage("ks", "never-written")).items, []);
        assert.equal(await reader.readKeyMetadata("ks", "never-written"), undefined);
        // The good token still works after all that.
        assert.deepEqual(text((await reader.readPage("ks", "k", { continuation: token })).items), ["b", "c"]);
      } finally {
        await cleanup();
      }
    });

    it("reports corrupt and truncated objects as data loss naming the object, and compaction leaves them be", async () => {
      const { store, writer, reader, objects, cleanup } = await setup();
      try {
        const [, middle] = objects as [string, string, string];
        const good = await store.get(middle);
        assert.ok(good);
        for (const damaged of [
          good.body.subarray(0, good.body.byteLength - 3), // truncated
          Buffer.from(good.body).fill(0xab, 0, 8), // offset field overwritten
          Buffer.alloc(good.body.byteLength, 0x5a), // garbage of the right size
        ]) {
          await store.put(middle, damaged);
          await assert.rejects(reader.readPage("ks", "k"), dataLoss(middle));
          await assert.rejects(reader.readPage("ks", "k", { order: "backwards" }), dataLoss(middle));
          // Pages that do not touch the damaged object still read.
          assert.deepEqual(text((await reader.readPage("ks", "k", { maxSize: 1 })).items), ["a"]);
        }
        // A compaction over a corrupt input fails without deleting or merging anything.
        const failures: unknown[] = [];
        const compacting = new StoreWriter({
          store,
          prefix: writer.prefix,
          config: { compactObjectsThreshold: 2 },
        });
        compacting.onCompactionError = (_layout, err) => failures.push(err);
        await compacting.appendList("ks", "k", values("d"));
        assert.equal(failures.length, 1);
        assert.ok(failures[0] instanceof CorruptObject);
        const keys = (await store.list(new KeyspaceLayout(writer.prefix, "ks").key("k").dataPrefix)).objects;
        assert.equal(keys.length, 4, "the three objects and the new one are all still there");
        // Once the object is repaired (here: restored from a backup), everything reads again.
        await store.put(middle, good.body);
        assert.deepEqual(text((await reader.readPage("ks", "k")).items), ["a", "b", "c", "d"]);
      } finally {
        await cleanup();
      }
    });

    it("reports a corrupt watermark, keyspace config or object name as data loss", async () => {
      const { store, writer, reader, layout, cleanup } = await setup();
      try {
        await store.put(layout.watermarkKey, Buffer.from("xyz"));
        await assert.rejects(reader.readKeyMetadata("ks", "k"), dataLoss(layout.watermarkKey));
        await assert.rejects(reader.readPage("ks", "k", { order: "backwards" }), dataLoss(layout.watermarkKey));
        await assert.rejects(
          writer.appendList("ks", "other", values("x")).then(() => {
            writer.invalidate("ks", "k");
            return writer.appendList("ks", "k", values("x"));
          }),
          dataLoss(layout.watermarkKey),
        );
        await store.delete([layout.watermarkKey]);

        const stray = `${layout.dataPrefix}o00000000000000000001-garbled.bin`;
        await store.put(stray, Buffer.from("x"));
        await assert.rejects(reader.readPage("ks", "k"), dataLoss(stray));
        await store.delete([stray]);

        const configKey = new KeyspaceLayout(writer.prefix, "ks").configKey;
        await store.put(configKey, Buffer.from("[keyspace]\ncreated=yesterday\n"));
        await assert.rejects(reader.readKeyspaceMetadata("ks"), dataLoss(configKey));
        await assert.rejects(
          new StoreWriter({ store, prefix: writer.prefix }).appendList("ks", "k", values("x")),
          dataLoss(configKey),
        );
      } finally {
        await cleanup();
      }
    });
  });
}
