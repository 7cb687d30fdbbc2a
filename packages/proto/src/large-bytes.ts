// Encoding of messages that carry megabytes in a bytes field (packed pages, packed appends).
// protobuf-es writes every field into a growing buffer and then slices it, so a page's
// bytes were copied twice before grpc-js copied them a third time behind its frame header;
// a reader serving pages of stored records spent a tenth of its CPU on those copies.
// Protobuf readers accept fields in any order, so such a field can be written after the
// rest of the message instead: the rest encoded by protobuf-es as usual, then the field's
// tag, length and bytes, all copied once into one buffer.

import { type DescField, type DescMessage, type MessageShape, ScalarType, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";

/** Below this, protobuf-es's own copies cost less than finding the field. */
export const LARGE_BYTES_FIELD = 64 * 1024;

const EMPTY = new Uint8Array(0);

/** Top-level bytes fields that an empty value leaves off the wire (proto3 implicit presence). */
const candidates = new WeakMap<DescMessage, readonly DescField[]>();

function bytesFieldsOf(schema: DescMessage): readonly DescField[] {
  let fields = candidates.get(schema);
  if (!fields) {
    fields = schema.fields.filter(
      (f) =>
        f.fieldKind === "scalar" &&
        f.scalar === ScalarType.BYTES &&
        f.oneof === undefined &&
        f.presence === FeatureSet_FieldPresence.IMPLICIT,
    );
    candidates.set(schema, fields);
  }
  return fields;
}

/** The message's wire bytes, as `toBinary` gives them but for the order of large bytes fields. */
export function encodeMessage<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Buffer {
  const values = message as unknown as Record<string, unknown>;
  const large = bytesFieldsOf(schema).filter((f) => {
    const value = values[f.localName];
    return value instanceof Uint8Array && value.byteLength >= LARGE_BYTES_FIELD;
  });
  if (large.length === 0) return asBuffer(toBinary(schema, message));
  const rest: Record<string, unknown> = { ...values };
  for (const f of large) rest[f.localName] = EMPTY;
  const parts: Uint8Array[] = [toBinary(schema, rest as MessageShape<Desc>)];
  for (const f of large) {
    const bytes = values[f.localName] as Uint8Array;
    parts.push(new BinaryWriter().tag(f.number, WireType.LengthDelimited).uint32(bytes.byteLength).finish(), bytes);
  }
  return Buffer.concat(parts);
}

/** A Buffer over the encoded bytes: Buffer.from(bytes) would copy them. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
