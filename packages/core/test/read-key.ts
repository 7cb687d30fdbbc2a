// A whole key read back page by page, as the engine tests check what a key holds: pages
// small enough to cross objects, every page within its size, and paging that ends.

import assert from "node:assert/strict";
import type { IterationOrder } from "../src/format/continuation.ts";
import type { Item } from "../src/format/records.ts";
import type { ItemFilter, StoreReader } from "../src/reader/store-reader.ts";

export interface ReadKeyOptions {
  readonly keyspace?: string;
  readonly key?: string;
  readonly order?: IterationOrder;
  readonly maxSize?: number;
  /** Where the first page starts (later pages follow continuations). */
  readonly filter?: ItemFilter;
  /** Resume from a continuation instead of the start. */
  readonly continuation?: string;
  /** Collects the items here as pages arrive, so a caller sees what came before a failure. */
  readonly into?: Item[];
  /** Fails past this many pages (paging that never ends). */
  readonly maxPages?: number;
}

export async function readKey(reader: StoreReader, options: ReadKeyOptions = {}): Promise<Item[]> {
  const { keyspace = "ks", key = "k", order = "forwards", maxSize = 50, filter, maxPages = 100_000 } = options;
  const items = options.into ?? [];
  let continuation = options.continuation;
  for (let pages = 0; pages < maxPages; pages++) {
    const page = await reader.readPage(keyspace, key, {
      order,
      maxSize,
      filter: continuation ? undefined : filter,
      continuation,
    });
    assert.ok(page.items.length <= maxSize, `a page of ${page.items.length} items, asked for ${maxSize}`);
    items.push(...page.items);
    continuation = page.continuation;
    if (!continuation) return items;
  }
  assert.fail(`paging of ${key} did not end after ${maxPages} pages`);
}
