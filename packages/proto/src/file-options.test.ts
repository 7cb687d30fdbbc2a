import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { file_klstore_v1_reader } from "./gen/klstore/v1/reader_pb.ts";
import { file_klstore_v1_types } from "./gen/klstore/v1/types_pb.ts";
import { file_klstore_v1_writer } from "./gen/klstore/v1/writer_pb.ts";

// buf breaking lets these options be added (buf.yaml); once published they are part of every
// generated client's import paths and class names, so a change must be deliberate.
describe("file options for other languages", () => {
  for (const [file, outer] of [
    [file_klstore_v1_types, "TypesProto"],
    [file_klstore_v1_writer, "WriterProto"],
    [file_klstore_v1_reader, "ReaderProto"],
  ] as const) {
    it(`${file.name}.proto names the same packages as the other files`, () => {
      const o = file.proto.options;
      assert.equal(o?.goPackage, "klstore.dev/gen/go/klstore/v1;klstorev1");
      assert.equal(o?.javaPackage, "dev.klstore.v1");
      assert.equal(o?.javaMultipleFiles, true);
      assert.equal(o?.javaOuterClassname, outer);
      assert.equal(o?.csharpNamespace, "Klstore.V1");
      assert.equal(o?.phpNamespace, "Klstore\\V1");
      assert.equal(o?.rubyPackage, "Klstore::V1");
      assert.equal(o?.objcClassPrefix, "KXX");
    });
  }
});
