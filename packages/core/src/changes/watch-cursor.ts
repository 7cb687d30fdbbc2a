// The watch cursor's wire form (docs/watch.md): `from` and `seen` in a fixed binary layout,
// sealed like continuation tokens (a CRC and the keyspace's tag, format/sealed-token.ts).
// Every field is range-checked and the size is bounded, so a damaged, edited or made-up
// cursor is refused as INVALID_ARGUMENT before it can cost a request or skip a change.
//
//   version u8 (2) | from i64 LE | writers u16 LE | per writer, ascending by id:
//   id 8 bytes, seq u64 LE | keyspace tag 8 bytes | CRC-32 u32 LE

import { InvalidArgument } from "../errors.ts";
import { SEAL_BYTES, sealToken, tokenBytes, unsealToken } from "../format/sealed-token.ts";
import { MAX_NAME_MILLIS, MAX_NAME_SEQ } from "./change-log.ts";

export interface WatchCursor {
  /** Every change object named before this time (ms since the epoch) was delivered. */
  readonly from: bigint;
  /** Per writer (16 hex digits), the highest sequence number delivered among objects from `from` on. */
  readonly seen: ReadonlyMap<string, number>;
}

const VERSION = 2;
const HEADER_BYTES = 1 + 8 + 2;
const WRITER_BYTES = 8 + 8;
/**
 * Writers a cursor holds at most: writer instances (a process each) with change objects in
 * the cursor's window, 15 to 45 s of the log when caught up. A cursor naming more is refused
 * unread; one that would grow past it forgets the writers with the oldest objects
 * (advanceCursor), which can only deliver their objects again, never skip one.
 */
export const MAX_CURSOR_WRITERS = 4096;
/** The longest cursor: MAX_CURSOR_WRITERS writers, 87,412 characters. */
export const MAX_CURSOR_BYTES = HEADER_BYTES + MAX_CURSOR_WRITERS * WRITER_BYTES + SEAL_BYTES;
const MAX_CURSOR_CHARS = Math.ceil((MAX_CURSOR_BYTES * 4) / 3);
const WRITER_ID = /^[0-9a-f]{16}$/;
/** A cursor's first byte in the JSON form of earlier versions (`[1,...`). */
const JSON_FORM = 0x5b;

export function encodeWatchCursor(folder: string, cursor: WatchCursor): string {
  const writers = [...cursor.seen.keys()].sort();
  if (writers.length > MAX_CURSOR_WRITERS) throw new RangeError(`a cursor holds ${MAX_CURSOR_WRITERS} writers at most`);
  const body = Buffer.alloc(HEADER_BYTES + writers.length * WRITER_BYTES);
  body.writeUInt8(VERSION, 0);
  body.writeBigInt64LE(cursor.from, 1);
  body.writeUInt16LE(writers.length, 9);
  writers.forEach((writer, i) => {
    if (!WRITER_ID.test(writer)) throw new RangeError(`writer ${writer} is not 16 hex digits`);
    const at = HEADER_BYTES + i * WRITER_BYTES;
    body.write(writer, at, "hex");
    body.writeBigUInt64LE(BigInt(cursor.seen.get(writer) as number), at + 8);
  });
  return sealToken(body, folder);
}

export function decodeWatchCursor(folder: string, token: string): WatchCursor {
  const bad = (reason: string) => new InvalidArgument("cursor", reason);
  if (typeof token === "string" && token.length > MAX_CURSOR_CHARS) {
    throw bad(
      `is ${token.length} characters, longer than any cursor this service issues (${MAX_CURSOR_CHARS}, ${MAX_CURSOR_WRITERS} writers)`,
    );
  }
  const bytes = tokenBytes(token, MAX_CURSOR_BYTES);
  if (bytes?.[0] === JSON_FORM) {
    // That form had no check: a damaged one could skip changes unnoticed (docs/watch.md).
    throw bad(
      "is from an earlier klstore version and cannot be checked for damage: watch from now (no cursor) and read the keys' lists to catch up",
    );
  }
  if (!bytes || bytes.length < HEADER_BYTES + SEAL_BYTES) throw bad("not a cursor this service issued");
  if (bytes[0] !== VERSION) throw bad(`cursor version ${bytes[0]} is not supported`);
  const body = unsealToken(bytes, folder);
  if (body === "damaged") throw bad("cursor is damaged: pass it exactly as a response carried it");
  if (body === "bound elsewhere") throw bad("cursor belongs to another keyspace");
  // Sealed, so these hold for every cursor issued; they refuse one sealed by hand.
  const from = body.readBigInt64LE(1);
  if (from < 0n || from > MAX_NAME_MILLIS) throw bad(`from ${from} is not a time a change object can have`);
  const writers = body.readUInt16LE(9);
  if (writers > MAX_CURSOR_WRITERS || body.length !== HEADER_BYTES + writers * WRITER_BYTES) {
    throw bad(`does not hold the ${writers} writers it says (${MAX_CURSOR_WRITERS} at most)`);
  }
  const seen = new Map<string, number>();
  let previous = "";
  for (let i = 0; i < writers; i++) {
    const at = HEADER_BYTES + i * WRITER_BYTES;
    const writer = body.toString("hex", at, at + 8);
    const seq = body.readBigUInt64LE(at + 8);
    if (writer <= previous) throw bad("writers are not in ascending order, each once");
    if (seq > BigInt(MAX_NAME_SEQ)) throw bad(`sequence number ${seq} of writer ${writer} is beyond any object's`);
    seen.set(writer, Number(seq));
    previous = writer;
  }
  return { from, seen };
}
