// Server-side decoding of requests. protobuf-es throws on a string field that is not valid
// UTF-8 (and on bytes that are not protobuf), and grpc-js answers a throwing deserializer
// with INTERNAL "Error deserializing request", which blames the server for the client's
// bytes and names nothing. Here a request that fails to decode becomes a MalformedRequest
// naming the offending field, which the service refuses as INVALID_ARGUMENT (grpc.ts).

import { isUtf8 } from "node:buffer";
import { type DescField, type DescMessage, fromBinary, type MessageShape, ScalarType } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/** A request that arrived whole but is not a valid message of its method's input type. */
export class MalformedRequest<M = unknown> {
  /** The field's path in the request (`key`, `insertions[2].value`); undefined if unlocated. */
  readonly field: string | undefined;
  readonly reason: string;
  /**
   * The request without its malformed fields, when the rest decodes: enough to answer it
   * in-band on a stream (its sequence number). Never to be served.
   */
  readonly partial: M | undefined;

  constructor(field: string | undefined, reason: string, partial: M | undefined) {
    this.field = field;
    this.reason = reason;
    this.partial = partial;
  }
}

/** Decodes a request, or says which field made it undecodable. */
export function decodeRequest<Desc extends DescMessage>(
  schema: Desc,
  bytes: Uint8Array,
): MessageShape<Desc> | MalformedRequest<MessageShape<Desc>> {
  try {
    return fromBinary(schema, bytes);
  } catch (err) {
    const first = locateDefect(schema, bytes, "", 0);
    const reason = first?.reason ?? `not a valid ${schema.typeName} message (${(err as Error).message})`;
    return new MalformedRequest(first?.field, reason, decodeWithout(schema, bytes, first));
  }
}

interface Defect {
  readonly field: string | undefined;
  readonly reason: string;
  /** The top-level record holding the defect, [start, end) in the request's bytes. */
  readonly start: number;
  readonly end: number;
}

/** Nesting deeper than this is not searched (protobuf-es's own recursion limit is 100). */
const MAX_DEPTH = 100;

/**
 * The first malformed field of a message, found by walking its wire records: a string
 * that is not UTF-8, a known string or message field with the wrong wire type, or a
 * record that runs past the end. Only called after decoding failed, so it may be slow.
 */
function locateDefect(schema: DescMessage, bytes: Uint8Array, path: string, depth: number): Defect | undefined {
  const reader = new BinaryReader(bytes);
  const seen = new Map<number, number>();
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const defect = (field: string | undefined, reason: string): Defect => ({
      field,
      reason,
      start,
      end: reader.len,
    });
    let fieldNo: number;
    let wireType: WireType;
    try {
      [fieldNo, wireType] = reader.tag();
    } catch (err) {
      return defect(path || undefined, `not valid protobuf: ${(err as Error).message}`);
    }
    const field = schema.fields.find((f) => f.number === fieldNo);
    const index = seen.get(fieldNo) ?? 0;
    seen.set(fieldNo, index + 1);
    const name = field ? fieldPath(path, field, index) : path || undefined;
    const delimited = field !== undefined && (isString(field) || isMessage(field));
    if (delimited && wireType !== WireType.LengthDelimited) {
      return defect(name, `wire type ${wireType} where a length-delimited field was expected`);
    }
    let payload: Uint8Array | undefined;
    try {
      if (wireType === WireType.LengthDelimited) payload = reader.bytes();
      else reader.skip(wireType, fieldNo);
    } catch (err) {
      return defect(name, `not valid protobuf: ${(err as Error).message}`);
    }
    const end = reader.pos;
    if (field === undefined || payload === undefined) continue;
    if (isString(field) && !isUtf8(payload)) return { field: name, reason: "not valid UTF-8", start, end };
    const nested = isMessage(field) ? (field.message as DescMessage) : undefined;
    if (nested && depth < MAX_DEPTH) {
      const inner = locateDefect(nested, payload, name ?? "", depth + 1);
      if (inner) return { field: inner.field, reason: inner.reason, start, end };
    }
  }
  return undefined;
}

function isString(field: DescField): boolean {
  return (field.fieldKind === "scalar" || field.fieldKind === "list") && field.scalar === ScalarType.STRING;
}

function isMessage(field: DescField): boolean {
  return field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message");
}

function fieldPath(parent: string, field: DescField, index: number): string {
  const name = parent ? `${parent}.${field.name}` : field.name;
  return field.fieldKind === "list" ? `${name}[${index}]` : name;
}

/** Most malformed records dropped to decode the rest; each drop walks the request again. */
const MAX_DROPPED_RECORDS = 8;

/** The request decoded without its malformed top-level records, if that succeeds. */
function decodeWithout<Desc extends DescMessage>(
  schema: Desc,
  bytes: Uint8Array,
  first: Defect | undefined,
): MessageShape<Desc> | undefined {
  let rest = bytes;
  let defect = first;
  for (let dropped = 0; defect && dropped < MAX_DROPPED_RECORDS; dropped++) {
    const without = new Uint8Array(rest.byteLength - (defect.end - defect.start));
    without.set(rest.subarray(0, defect.start));
    without.set(rest.subarray(defect.end), defect.start);
    rest = without;
    try {
      return fromBinary(schema, rest);
    } catch {
      defect = locateDefect(schema, rest, "", 0);
    }
  }
  return undefined;
}
