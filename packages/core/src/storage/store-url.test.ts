// Store URL parsing: an s3:// URL's path is a folder, so "prefix" and "prefix/" name the
// same store, and a path the server would normalise is refused rather than rewritten.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidArgument } from "../errors.ts";
import { S3_DEFAULTS } from "./s3.ts";
import { openStore, s3ConfigFromUrl } from "./store-url.ts";

const prefixOf = (url: string) => s3ConfigFromUrl(url).objectPrefix;

describe("store URL", () => {
  it("reads an s3:// path as a folder: with or without the last slash, one prefix ending in /", () => {
    assert.equal(prefixOf("s3://b/prefix?region=eu-west-1"), "prefix/");
    assert.equal(prefixOf("s3://b/prefix/?region=eu-west-1"), "prefix/");
    assert.equal(prefixOf("s3://b/team/klstore"), "team/klstore/");
    assert.equal(prefixOf("s3://b/team/klstore/"), "team/klstore/");
    assert.equal(openStore("s3://b/prefix?endpoint=http://127.0.0.1:1").prefix, "prefix/");
  });

  it("takes no path, or a lone slash, as no prefix", () => {
    assert.equal(prefixOf("s3://b"), "");
    assert.equal(prefixOf("s3://b/"), "");
    assert.equal(prefixOf("s3://b?region=eu-west-1"), "");
    assert.equal(prefixOf("s3://b/?region=eu-west-1"), "");
  });

  it("decodes percent-encoded segments", () => {
    assert.equal(prefixOf("s3://b/my%20data/v1"), "my data/v1/");
    assert.equal(prefixOf("s3://b/caf%C3%A9"), "café/");
  });

  it("refuses empty, '.' and '..' segments instead of letting the URL parser rewrite them", () => {
    for (const url of ["s3://b//p", "s3://b/a//b", "s3://b/a/./b", "s3://b/a/../b", "s3://b/%2e%2e/b", "s3://b/."]) {
      assert.throws(
        () => s3ConfigFromUrl(url),
        (err: unknown) => err instanceof InvalidArgument && /empty, "\." or "\.\." segment/.test(err.message),
        url,
      );
    }
  });

  it("refuses bad percent-encoding and a fragment with a clear error, not a URIError", () => {
    assert.throws(
      () => s3ConfigFromUrl("s3://b/a%zz"),
      (err: unknown) => err instanceof InvalidArgument && /percent-encoding/.test(err.message),
    );
    // An unencoded "#" in a secret would cut the query short without a word.
    assert.throws(
      () => s3ConfigFromUrl("s3://b/p?access_key=K&secret_key=ab#cd"),
      (err: unknown) => err instanceof InvalidArgument && /%23/.test(err.message),
    );
  });

  it("uses a config file's object_prefix verbatim ({prefix}{keyspace}/..., docs/format.md)", () => {
    const opened = openStore({ ...S3_DEFAULTS, bucketName: "b", objectPrefix: "raw-", endpoint: "http://127.0.0.1:1" });
    assert.equal(opened.prefix, "raw-");
  });
});
