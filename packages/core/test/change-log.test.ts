// The keyspace change log: group commit of changes, the watch cursor's exactly-once rules
// (a late object, a rewritten one, the lookback window), expiry, and cursor validation.
// Needs: the filesystem, and SeaweedFS when KLSTORE_TEST_S3_ENDPOINT is set.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  advanceCursor,
  checkCursorAge,
  cursorAt,
  decodeWatchCursor,
  encodeWatchCursor,
  expireChangeObjects,
  inCommitOrderPerKey,
  listChangeObjects,
  pollChanges,
  RepeatedChangeFilter,
} from "../src/changes/change-feed.ts";
import {
  CHANGE_LOG_RETENTION_MILLIS,
  ChangeLog,
  type ChangeObjectRef,
  changeObjectKey,
  changesFolder,
  encodeChanges,
  LOOKBACK_MILLIS,
} from "../src/changes/change-log.ts";
import { CorruptObject, InvalidArgument } from "../src/errors.ts";
import { countingStore, type ObjectStore, StorageStats } from "../src/storage/object-store.ts";
import { StoreWriter } from "../src/writer/store-writer.ts";
import { backends } from "./backends.ts";

const ref = (millis: number, writer: string, seq: number): ChangeObjectRef => ({
  key: `t${millis}_w${writer}_s${seq}`,
  millis: BigInt(millis),
  writer,
  seq,
});

describe("watch cursor", () => {
  it("delivers each writer's object once, even when it was written twice or shows up late", () => {
    const start = cursorAt(1000n);
    const first = advanceCursor(start, [ref(1000, "a", 0), ref(1005, "b", 0)], 1010n);
    assert.deepEqual(
      first.deliver.map((r) => r.key),
      ["t1000_wa_s0", "t1005_wb_s0"],
    );
    // a's next object was rewritten under a later time (its first PUT was slow): both copies
    // are listed now, and b's late object landed with an earlier time than a's.
    const listed = [ref(1000, "a", 0), ref(1003, "b", 1), ref(1005, "b", 0), ref(1008, "a", 1), ref(1020, "a", 1)];
    const second = advanceCursor(first.next, listed, 1030n);
    assert.deepEqual(
      second.deliver.map((r) => r.key),
      ["t1003_wb_s1", "t1008_wa_s1"],
    );
    assert.deepEqual(advanceCursor(second.next, listed, 1040n).deliver, [], "nothing twice");
  });

  it("moves its start up to the lookback window and forgets writers that left it", () => {
    const now = 100_000n;
    const { next } = advanceCursor(cursorAt(0n), [ref(10, "old", 3), ref(99_000, "new", 0)], now);
    assert.equal(next.from, now - BigInt(LOOKBACK_MILLIS));
    assert.deepEqual([...next.seen], [["new", 0]]);
    assert.deepEqual(advanceCursor(next, [ref(10, "old", 4)], now).deliver, [], "before the start: skipped");
  });

  it("catches up in steps: a cut or truncated delivery never moves the cursor past what it left out", () => {
    const now = 1_000_000n;
    // Old objects (beyond the lookback window) of two writers, several in one millisecond.
    const log = [
      ref(100, "a", 0),
      ref(100, "b", 0),
      ref(100, "b", 1),
      ref(200, "a", 1),
      ref(300, "a", 2),
      ref(300, "b", 2),
      ref(400, "a", 3),
    ];
    for (const [deliverAtMost, page] of [
      [2, log.length],
      [100, 3],
      [1, 2],
    ] as const) {
      let cursor = cursorAt(50n);
      const delivered: string[] = [];
      for (let step = 0; step < 20 && delivered.length < log.length; step++) {
        const listed = log.filter((r) => r.millis >= cursor.from);
        let shown = listed.slice(0, page);
        // As pollChanges: a page of one millisecond's objects is listed to the end instead.
        if (shown.length < listed.length && shown[0]?.millis === shown.at(-1)?.millis) shown = listed;
        const truncated = shown.length < listed.length;
        const { deliver, next } = advanceCursor(cursor, shown, now, { truncated, deliverAtMost });
        delivered.push(...deliver.map((r) => r.key));
        cursor = next;
      }
      assert.deepEqual(
        delivered,
        log.map((r) => r.key),
        `at most ${deliverAtMost} per step, pages of ${page}`,
      );
    }
  });

  it("refuses a cursor from the future, which would skip every change until then", () => {
    const now = BigInt(Date.now());
    assert.throws(() => checkCursorAge(cursorAt(now + 3_600_000n), now), /in the future/);
    checkCursorAge(cursorAt(now + 1000n), now); // clock skew between readers is tolerated
  });

  it("round-trips, and refuses a damaged cursor or another keyspace's (the whole matrix: watch-cursor.test.ts)", () => {
    const cursor = { from: 123n, seen: new Map([["00000000000000ab", 7]]) };
    const token = encodeWatchCursor("ks/.changes/", cursor);
    assert.deepEqual(decodeWatchCursor("ks/.changes/", token), cursor);
    assert.throws(() => decodeWatchCursor("other/.changes/", token), /another keyspace/);
    assert.throws(() => decodeWatchCursor("ks/.changes/", "bm9wZQ"), InvalidArgument);
    assert.throws(() => decodeWatchCursor("ks/.changes/", `${token}x`), InvalidArgument);
  });

  it("orders each key's changes by next offset without moving other keys", () => {
    const c = (key: string, next: number) => ({ key, nextOffset: BigInt(next), nextNonce: 0n, commitMillis: 1n });
    assert.deepEqual(
      inCommitOrderPerKey([c("a", 5), c("b", 1), c("a", 3), c("b", 2)]).map((x) => `${x.key}${x.nextOffset}`),
      ["a3", "b1", "a5", "b2"],
    );
  });

  it("drops a change that reports no progress over one delivered before on the stream", () => {
    const c = (key: string, next: number) => ({ key, nextOffset: BigInt(next), nextNonce: 0n, commitMillis: 1n });
    const filter = new RepeatedChangeFilter();
    assert.deepEqual(
      filter.admit([c("a", 3), c("b", 1), c("a", 3)]).map((x) => `${x.key}${x.nextOffset}`),
      ["a3", "b1"],
    );
    assert.deepEqual(
      filter.admit([c("b", 1), c("a", 4), c("b", 2)]).map((x) => `${x.key}${x.nextOffset}`),
      ["a4", "b2"],
    );
  });
});

for (const backend of backends()) {
  describe(`change log (${backend.name})`, () => {
    it("group-commits concurrent changes: fewer PUTs than changes, every change durable once", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const stats = new StorageStats();
        const log = new ChangeLog(countingStore(store, stats), prefix, () => BigInt(Date.now()));
        const changes = Array.from({ length: 60 }, (_, i) => ({
          key: `k${i % 7}`,
          nextOffset: BigInt(i + 1),
          nextNonce: 0n,
          commitMillis: BigInt(Date.now()),
        }));
        await Promise.all(changes.map((c) => log.record("ks", c)));
        assert.ok(stats.putRequests < changes.length, `${stats.putRequests} PUTs for ${changes.length} changes`);
        const polled = await pollChanges(store, prefix, "ks", cursorAt(0n), BigInt(Date.now()));
        assert.deepEqual(
          polled.changes.map((c) => c.nextOffset),
          changes.map((c) => c.nextOffset),
        );
      } finally {
        await cleanup();
      }
    });

    it("keeps changes whose PUT failed and writes them with the next one", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        let failNext = true;
        const flaky: ObjectStore = {
          ...store,
          async put(key, body, options) {
            if (failNext) {
              failNext = false;
              throw new Error("storage hiccup");
            }
            return store.put(key, body, options);
          },
        };
        const log = new ChangeLog(flaky, prefix, () => BigInt(Date.now()));
        const change = (n: number) => ({ key: "k", nextOffset: BigInt(n), nextNonce: 0n, commitMillis: 1n });
        await assert.rejects(log.record("ks", change(1)), /storage hiccup/);
        await log.record("ks", change(2));
        const polled = await pollChanges(store, prefix, "ks", cursorAt(0n), BigInt(Date.now()));
        assert.deepEqual(
          polled.changes.map((c) => c.nextOffset),
          [1n, 2n],
        );
      } finally {
        await cleanup();
      }
    });

    it("announces a key again when a retried append is all duplicates, so a change lost with a crashed writer still reaches watchers", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const setup = new StoreWriter({ store, prefix });
        await setup.createKeyspace("ks");
        const start = cursorAt(BigInt(Date.now()) - 1000n);
        // The first writer commits and "crashes" before its change is written: no change log.
        const crashed = new StoreWriter({ store, prefix, config: { changeLog: false } });
        const items = [{ value: Buffer.from("x"), nonce: 7n }];
        await crashed.appendList("ks", "k", items);
        assert.deepEqual((await pollChanges(store, prefix, "ks", start, BigInt(Date.now()))).changes, []);
        // The client never heard back, so it retries against the writer that took over.
        const takeover = new StoreWriter({ store, prefix });
        const outcomes = await takeover.appendList("ks", "k", items);
        assert.deepEqual(
          outcomes.map((o) => o.kind),
          ["duplicate"],
        );
        const polled = await pollChanges(store, prefix, "ks", start, BigInt(Date.now()));
        assert.deepEqual(
          polled.changes.map((c) => [c.key, c.nextOffset, c.nextNonce]),
          [["k", 1n, 8n]],
        );
        // An empty append announces nothing.
        await takeover.appendList("ks", "empty", []);
        const again = await pollChanges(store, prefix, "ks", start, BigInt(Date.now()));
        assert.deepEqual(
          again.changes.map((c) => c.key),
          ["k"],
        );
        await Promise.all([setup.close(), crashed.close(), takeover.close()]);
      } finally {
        await cleanup();
      }
    });

    it("delivers a large backlog in steps of about MAX_CHANGES_PER_STEP changes, each change once", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const folder = changesFolder(prefix, "ks");
        const now = BigInt(Date.now());
        const start = now - 600_000n; // beyond the lookback window: a cursor resumed long after
        const perObject = 4000;
        for (let o = 0; o < 4; o++) {
          const changes = Array.from({ length: perObject }, (_, i) => ({
            key: `k${o}-${i}`,
            nextOffset: 1n,
            nextNonce: 0n,
            commitMillis: start + BigInt(o),
          }));
          await store.put(changeObjectKey(folder, start + BigInt(o), "00000000000000aa", o), encodeChanges(changes));
        }
        let cursor = cursorAt(start - 1n);
        const sizes: number[] = [];
        const keys = new Set<string>();
        for (let step = 0; step < 5; step++) {
          const { changes, next } = await pollChanges(store, prefix, "ks", cursor, now);
          if (changes.length === 0) break;
          sizes.push(changes.length);
          for (const c of changes) keys.add(c.key);
          cursor = next;
        }
        assert.deepEqual(sizes, [12_000, 4000], "whole objects, until the step holds 10,000 changes");
        assert.equal(keys.size, 16_000, "every change once");
      } finally {
        await cleanup();
      }
    });

    it("lists past a page of objects it has already delivered instead of waiting for them to age out", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const folder = changesFolder(prefix, "ks");
        const now = BigInt(Date.now());
        // 1001 objects of one writer within the lookback window; the cursor has seen 1000.
        const base = now - 5000n;
        const puts: Promise<void>[] = [];
        for (let seq = 0; seq <= 1000; seq++) {
          const change = { key: `k${seq}`, nextOffset: 1n, nextNonce: 0n, commitMillis: base + BigInt(seq) };
          puts.push(
            store.put(changeObjectKey(folder, base + BigInt(seq), "00000000000000aa", seq), encodeChanges([change])),
          );
          if (puts.length === 50) await Promise.all(puts.splice(0));
        }
        await Promise.all(puts);
        const cursor = { from: now - BigInt(LOOKBACK_MILLIS), seen: new Map([["00000000000000aa", 999]]) };
        const { changes, next } = await pollChanges(store, prefix, "ks", cursor, now);
        assert.deepEqual(
          changes.map((c) => c.key),
          ["k1000"],
        );
        assert.equal(next.seen.get("00000000000000aa"), 1000);
      } finally {
        await cleanup();
      }
    });

    it("reports a damaged change object as data loss naming it, not as an outage to retry", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const folder = changesFolder(prefix, "ks");
        const now = BigInt(Date.now());
        const damaged = changeObjectKey(folder, now, "00000000000000ab", 0);
        await store.put(damaged, Buffer.from('garbage{\n{"next_offset":"1","commit_millis":"1"}\n'));
        await assert.rejects(
          pollChanges(store, prefix, "ks", cursorAt(now - 1000n), now),
          (err: unknown) => err instanceof CorruptObject && err.message.includes(damaged),
        );
      } finally {
        await cleanup();
      }
    });

    it("expires objects older than the change log keeps, and only those", async () => {
      const { store, prefix, cleanup } = await backend.open();
      try {
        const folder = changesFolder(prefix, "ks");
        const now = BigInt(Date.now());
        const old = now - BigInt(CHANGE_LOG_RETENTION_MILLIS) - 1000n;
        const body = encodeChanges([{ key: "k", nextOffset: 1n, nextNonce: 0n, commitMillis: old }]);
        for (let i = 0; i < 3; i++)
          await store.put(changeObjectKey(folder, old + BigInt(i), "00000000000000aa", i), body);
        await store.put(changeObjectKey(folder, now, "00000000000000aa", 3), body);
        assert.equal(await expireChangeObjects(store, prefix, "ks", now), 3);
        assert.deepEqual(
          (await listChangeObjects(store, prefix, "ks", 0n)).map((r) => r.seq),
          [3],
        );
      } finally {
        await cleanup();
      }
    });
  });
}
