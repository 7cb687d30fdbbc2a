// A store opened by an s3:// URL without the last slash lands in the folder the URL names,
// on a real S3 server (SeaweedFS; skipped without KLSTORE_TEST_S3_ENDPOINT outside CI).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StoreReader } from "../src/reader/store-reader.ts";
import { openStore } from "../src/storage/store-url.ts";
import { StoreWriter } from "../src/writer/store-writer.ts";
import { backends } from "./backends.ts";

for (const backend of backends().filter((b) => b.name === "s3")) {
  describe(`store URL prefix (${backend.name})`, () => {
    it("s3://BUCKET/prefix stores under prefix/, where s3://BUCKET/prefix/ finds it", async () => {
      const { store: raw, prefix, url, cleanup } = await backend.open();
      assert.ok(prefix.endsWith("/") && url.includes(`${prefix}?`), url);
      const withoutSlash = openStore(url.replace(`${prefix}?`, `${prefix.slice(0, -1)}?`));
      const withSlash = openStore(url);
      try {
        const writer = new StoreWriter({ store: withoutSlash.store, prefix: withoutSlash.prefix });
        await writer.createKeyspace("demo");
        await writer.appendList("demo", "user", [{ value: Buffer.from("hello") }]);

        const names = (await raw.list(prefix.slice(0, -1))).objects.map((o) => o.key);
        assert.ok(names.length > 0);
        for (const name of names) assert.ok(name.startsWith(prefix), `${name} is outside ${prefix}`);
        assert.ok(names.includes(`${prefix}demo_config.ini`), names.join("\n"));

        const page = await new StoreReader({ store: withSlash.store, prefix: withSlash.prefix }).readPage(
          "demo",
          "user",
          {
            order: "forwards",
          },
        );
        assert.deepEqual(
          page.items.map((i) => Buffer.from(i.value).toString()),
          ["hello"],
        );
      } finally {
        await Promise.all([withoutSlash.store.close(), withSlash.store.close()]);
        await cleanup();
      }
    });
  });
}
