// Raw protobuf requests and calls for tests that must send what the generated encoders
// refuse to write (a string that is not UTF-8, a uint32 sent as a 64-bit -1, bytes that
// are not protobuf), as a client in another language may: requests are built field by
// field and sent as bytes; answers come back as code, details and the BadRequest field.

import { fromBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { type Client, Metadata, type ServiceError, type StatusObject, status } from "@grpc/grpc-js";
import { BadRequestSchema, StatusSchema } from "@klstore/proto";

/** One field of a raw message, written into the message's writer. */
export type RawField = (w: BinaryWriter) => void;

/** "a\xffb": three bytes that are not UTF-8. */
export const NOT_UTF8 = new Uint8Array([0x61, 0xff, 0x62]);

export const str =
  (no: number, value: string | Uint8Array): RawField =>
  (w) => {
    w.tag(no, WireType.LengthDelimited);
    if (typeof value === "string") w.string(value);
    else w.bytes(value);
  };
export const bytes = str;
export const uint =
  (no: number, value: bigint | number): RawField =>
  (w) =>
    w.tag(no, WireType.Varint).uint64(value);
/** A signed varint: -1 is ten bytes of all ones, as a uint32 field may receive it. */
export const int =
  (no: number, value: bigint | number): RawField =>
  (w) =>
    w.tag(no, WireType.Varint).int64(value);
export const message =
  (no: number, ...fields: RawField[]): RawField =>
  (w) => {
    w.tag(no, WireType.LengthDelimited).fork();
    for (const f of fields) f(w);
    w.join();
  };
/** A Uint128 message field. */
export const u128 = (no: number, value: bigint): RawField =>
  message(no, uint(1, value >> 64n), uint(2, value & ((1n << 64n) - 1n)));

export function raw(...fields: RawField[]): Uint8Array {
  const w = new BinaryWriter();
  for (const f of fields) f(w);
  return w.finish();
}

/** What a call answered: its status, the BadRequest field if any, and the messages streamed. */
export interface Answer {
  readonly code: status;
  readonly details: string;
  readonly field: string | undefined;
  readonly messages: Buffer[];
}

const passThrough = (b: Buffer) => b;

function badRequestField(metadata: Metadata | undefined): string | undefined {
  const bin = metadata?.get("grpc-status-details-bin")[0];
  if (!(bin instanceof Buffer)) return undefined;
  const details = fromBinary(StatusSchema, bin).details;
  return details.map((d) => anyUnpack(d, BadRequestSchema)).find((d) => d !== undefined)?.fieldViolations[0]?.field;
}

function answerOf(end: StatusObject | null, messages: Buffer[]): Answer {
  if (!end || end.code === status.OK) return { code: status.OK, details: "", field: undefined, messages };
  return { code: end.code, details: end.details, field: badRequestField(end.metadata), messages };
}

export function callRaw(client: Client, path: string, request: Uint8Array): Promise<Answer> {
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      path,
      passThrough,
      passThrough,
      Buffer.from(request),
      new Metadata(),
      { deadline: Date.now() + 30_000 },
      (err: ServiceError | null, response?: Buffer) => resolve(answerOf(err, response ? [response] : [])),
    ),
  );
}

/** A server stream, read to its end (streams that would follow are given `limit` or a deadline). */
export function streamRaw(client: Client, path: string, request: Uint8Array, deadlineMillis = 30_000): Promise<Answer> {
  return new Promise((resolve) => {
    const messages: Buffer[] = [];
    const call = client.makeServerStreamRequest(path, passThrough, passThrough, Buffer.from(request), new Metadata(), {
      deadline: Date.now() + deadlineMillis,
    });
    call.on("data", (m: Buffer) => messages.push(m));
    // 'status' comes last, after every message, whatever the outcome; 'error' repeats it.
    call.on("error", () => {});
    call.on("status", (end: StatusObject) => resolve(answerOf(end, messages)));
  });
}

/** A bidirectional stream: every request sent, then half-closed; the answers and final status. */
export function bidiRaw(client: Client, path: string, requests: readonly Uint8Array[]): Promise<Answer> {
  return new Promise((resolve) => {
    const messages: Buffer[] = [];
    const call = client.makeBidiStreamRequest(path, passThrough, passThrough, new Metadata(), {
      deadline: Date.now() + 30_000,
    });
    call.on("data", (m: Buffer) => messages.push(m));
    call.on("error", () => {});
    call.on("status", (end: StatusObject) => resolve(answerOf(end, messages)));
    for (const r of requests) call.write(Buffer.from(r));
    call.end();
  });
}
