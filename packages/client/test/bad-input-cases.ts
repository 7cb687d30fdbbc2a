// The bad-input matrix: for every RPC of WriterService and ReaderService, requests as raw
// protobuf bytes that a client in any language could send, each with the status code it
// must get and the field its BadRequest detail must name. Run by bad-input.test.ts.

import { status } from "@grpc/grpc-js";
import { packInsertions } from "@klstore/proto";
import { bytes, int, message, NOT_UTF8, type RawField, raw, str, u128, uint } from "./wire.ts";

export interface BadInputCase {
  readonly name: string;
  /** Full method path, e.g. /klstore.v1.WriterService/Append. */
  readonly path: string;
  readonly streaming: boolean;
  readonly request: Uint8Array;
  readonly code: status;
  /** The field the BadRequest detail names; undefined when the answer has none. */
  readonly field: string | undefined;
}

export interface MatrixContext {
  /** A keyspace that exists, and a key in it holding items. */
  readonly keyspace: string;
  readonly key: string;
  /** The writers' clock, about now (ms since the epoch). */
  readonly now: bigint;
  /** The writers' max_value_bytes and max_items_per_append; the reader's max_page_items. */
  readonly maxValueBytes: number;
  readonly maxItemsPerAppend: number;
  readonly maxPageItems: number;
}

export const I64_MAX = (1n << 63n) - 1n;
export const U128 = 1n << 128n;
export const DAY_MILLIS = 86_400_000n;

const writer = (method: string) => `/klstore.v1.WriterService/${method}`;
const reader = (method: string) => `/klstore.v1.ReaderService/${method}`;

/** An Insertion message field (AppendRequest field 3, AppendSessionRequest field 4). */
export function insertion(no: number, value: string | Uint8Array, nonce?: bigint, timestamp?: bigint): RawField {
  const fields = [bytes(1, typeof value === "string" ? Buffer.from(value) : value)];
  if (nonce !== undefined) fields.push(u128(2, nonce));
  if (timestamp !== undefined) fields.push(int(3, timestamp));
  return message(no, ...fields);
}

export function badInputCases(ctx: MatrixContext): BadInputCase[] {
  const { keyspace: ks, key: k } = ctx;
  const cases: BadInputCase[] = [];
  const add = (
    name: string,
    path: string,
    request: Uint8Array,
    code: status,
    field: string | undefined,
    streaming = false,
  ) => cases.push({ name, path, request, code, field, streaming });
  const invalid = status.INVALID_ARGUMENT;
  const notFound = status.NOT_FOUND;
  const notProtobuf = new Uint8Array([0x07]); // field 0, wire type 7: no valid tag
  const v = (s: string) => insertion(3, s);
  const farFuture = ctx.now + DAY_MILLIS + 60_000n;

  add("CreateKeyspace: keyspace not UTF-8", writer("CreateKeyspace"), raw(str(1, NOT_UTF8)), invalid, "keyspace");
  add("CreateKeyspace: keyspace empty", writer("CreateKeyspace"), raw(), invalid, "keyspace");
  add(
    "CreateKeyspace: compression unknown",
    writer("CreateKeyspace"),
    raw(str(1, "new"), uint(2, 9)),
    invalid,
    "compression",
  );
  add(
    "CreateKeyspace: retention max_age_millis 0",
    writer("CreateKeyspace"),
    raw(str(1, "new"), message(3, uint(1, 0))),
    invalid,
    "retention.max_age_millis",
  );
  add("CreateKeyspace: exists", writer("CreateKeyspace"), raw(str(1, ks)), status.ALREADY_EXISTS, undefined);
  add("CreateKeyspace: not protobuf", writer("CreateKeyspace"), notProtobuf, invalid, "request");

  const append = (name: string, code: status, field: string | undefined, ...fields: RawField[]) =>
    add(`Append: ${name}`, writer("Append"), raw(...fields), code, field);
  append("keyspace not UTF-8", invalid, "keyspace", str(1, NOT_UTF8), str(2, k), v("x"));
  append("key not UTF-8", invalid, "key", str(1, ks), str(2, NOT_UTF8), v("x"));
  append("key empty", invalid, "key", str(1, ks), v("x"));
  append("keyspace missing", notFound, undefined, str(1, "nope"), str(2, k), v("x"));
  append("no insertions", invalid, "insertions", str(1, ks), str(2, k));
  append("nonce 2^128-1", invalid, "insertions[0].nonce", str(1, ks), str(2, k), insertion(3, "x", U128 - 1n));
  append("nonce 2^128-2", invalid, "insertions[0].nonce", str(1, ks), str(2, k), insertion(3, "x", U128 - 2n));
  append(
    "timestamp i64 max",
    invalid,
    "insertions[1].timestamp_millis",
    str(1, ks),
    str(2, k),
    v("ok"),
    insertion(3, "x", undefined, I64_MAX),
  );
  append(
    "timestamp a day and a minute ahead",
    invalid,
    "insertions[0].timestamp_millis",
    str(1, ks),
    str(2, k),
    insertion(3, "x", undefined, farFuture),
  );
  append(
    "packed, timestamp i64 max",
    invalid,
    "packed_insertions",
    str(1, ks),
    str(2, k),
    bytes(5, packInsertions([{ value: Buffer.from("x"), timestamp: I64_MAX }])),
  );
  append(
    "packed, nonce 2^128-2",
    invalid,
    "packed_insertions",
    str(1, ks),
    str(2, k),
    bytes(5, packInsertions([{ value: Buffer.from("x"), nonce: U128 - 2n }])),
  );
  append(
    "packed, malformed",
    invalid,
    "packed_insertions",
    str(1, ks),
    str(2, k),
    bytes(5, new Uint8Array([9, 0, 0, 0])),
  );
  append(
    "value over max_value_bytes",
    invalid,
    "insertions[0].value",
    str(1, ks),
    str(2, k),
    insertion(3, Buffer.alloc(ctx.maxValueBytes + 1)),
  );
  append(
    "insertions over max_items_per_append",
    invalid,
    "insertions",
    str(1, ks),
    str(2, k),
    ...Array.from({ length: ctx.maxItemsPerAppend + 1 }, () => v("x")),
  );
  append(
    "insertions and packed_insertions",
    invalid,
    "packed_insertions",
    str(1, ks),
    str(2, k),
    v("x"),
    bytes(5, packInsertions([{ value: Buffer.from("y") }])),
  );
  append("ack_mode unknown", invalid, "ack_mode", str(1, ks), str(2, k), v("x"), uint(4, 9));
  // A length running past the end of the message.
  add("Append: truncated", writer("Append"), new Uint8Array([0x0a, 50, 0x61, 0x62]), invalid, "keyspace");

  const keyed = (method: string, extra: RawField[] = [], streaming = false) => {
    const path = method.startsWith("Get") || method.startsWith("Read") ? reader(method) : writer(method);
    add(
      `${method}: keyspace not UTF-8`,
      path,
      raw(str(1, NOT_UTF8), str(2, k), ...extra),
      invalid,
      "keyspace",
      streaming,
    );
    add(`${method}: key not UTF-8`, path, raw(str(1, ks), str(2, NOT_UTF8), ...extra), invalid, "key", streaming);
    add(`${method}: key empty`, path, raw(str(1, ks), ...extra), invalid, "key", streaming);
    add(`${method}: keyspace missing`, path, raw(str(1, "nope"), str(2, k), ...extra), notFound, undefined, streaming);
  };
  keyed("FlushKey");
  add("FlushAll: not protobuf", writer("FlushAll"), notProtobuf, invalid, "request");
  keyed("Trim");
  add(
    "Trim: before_offset beyond the end",
    writer("Trim"),
    raw(str(1, ks), str(2, k), uint(3, 1n << 40n)),
    invalid,
    "before_offset",
  );
  add("SetRetention: keyspace not UTF-8", writer("SetRetention"), raw(str(1, NOT_UTF8)), invalid, "keyspace");
  add("SetRetention: keyspace missing", writer("SetRetention"), raw(str(1, "nope")), notFound, undefined);
  add(
    "SetRetention: retention max_items 0",
    writer("SetRetention"),
    raw(str(1, ks), message(2, uint(2, 0))),
    invalid,
    "retention.max_items",
  );

  add(
    "GetKeyspaceMetadata: keyspace not UTF-8",
    reader("GetKeyspaceMetadata"),
    raw(str(1, NOT_UTF8)),
    invalid,
    "keyspace",
  );
  add("GetKeyspaceMetadata: keyspace empty", reader("GetKeyspaceMetadata"), raw(), invalid, "keyspace");
  add("GetKeyspaceMetadata: keyspace missing", reader("GetKeyspaceMetadata"), raw(str(1, "nope")), notFound, undefined);
  keyed("GetKeyMetadata");

  keyed("ReadPage");
  const page = (name: string, field: string | undefined, ...fields: RawField[]) =>
    add(`ReadPage: ${name}`, reader("ReadPage"), raw(str(1, ks), str(2, k), ...fields), invalid, field);
  page("continuation not UTF-8", "continuation", str(6, NOT_UTF8));
  page("continuation not a token", "continuation", str(6, "not-a-token"));
  page("max_items 2^31", "max_items", uint(4, 2 ** 31));
  page("max_items -1", "max_items", int(4, -1));
  page("max_items over max_page_items", "max_items", uint(4, ctx.maxPageItems + 1));
  page("order unknown", "order", uint(3, 7));

  // Every stream has a limit, so a case that is wrongly accepted still ends.
  const limit = uint(7, 1);
  keyed("ReadStream", [limit], true);
  const stream = (name: string, field: string | undefined, ...fields: RawField[]) =>
    add(
      `ReadStream: ${name}`,
      reader("ReadStream"),
      raw(str(1, ks), str(2, k), limit, ...fields),
      invalid,
      field,
      true,
    );
  stream("continuation not UTF-8", "continuation", str(5, NOT_UTF8));
  stream("continuation not a token", "continuation", str(5, "not-a-token"));
  stream("page_size 2^31", "page_size", uint(6, 2 ** 31));
  stream("page_size -1", "page_size", int(6, -1));
  stream("page_size over max_page_items", "page_size", uint(6, ctx.maxPageItems + 1));
  stream("order unknown", "order", uint(3, 7));
  stream("follow backwards", "follow", uint(3, 2), uint(8, 1));

  const watch = (name: string, code: status, field: string | undefined, ...fields: RawField[]) =>
    add(`WatchKeyspace: ${name}`, reader("WatchKeyspace"), raw(...fields), code, field, true);
  watch("keyspace not UTF-8", invalid, "keyspace", str(1, NOT_UTF8));
  watch("cursor not UTF-8", invalid, "cursor", str(1, ks), str(2, NOT_UTF8));
  watch("cursor not a cursor", invalid, "cursor", str(1, ks), str(2, "not-a-cursor"));
  watch("keyspace missing", notFound, undefined, str(1, "nope"));
  return cases;
}
