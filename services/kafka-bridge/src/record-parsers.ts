// The seed's record parsers: how a Kafka record becomes a klstore insertion. String parsers
// pick the keyspace and key; number parsers pick the nonce and timestamp. A parser either
// returns a value or throws RecordParseError, which the bridge hands to its bad-record
// policy instead of stopping.

/** What a parser may look at in a consumed record. */
export interface ConsumedRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly key: Buffer | undefined;
  readonly value: Buffer | undefined;
  readonly headers: ReadonlyMap<string, Buffer>;
}

export class RecordParseError extends Error {
  override readonly name = "RecordParseError";
}

export type StringParser = (record: ConsumedRecord) => string;
/** Undefined: the record has no such number (parser `None`). */
export type NumberParser = (record: ConsumedRecord) => bigint | undefined;

const utf8 = new TextDecoder("utf-8", { fatal: true });

function text(bytes: Buffer, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new RecordParseError(`${what} is not UTF-8`);
  }
}

function header(record: ConsumedRecord, name: string): Buffer {
  const value = record.headers.get(name);
  if (value === undefined) throw new RecordParseError(`header ${JSON.stringify(name)} is missing`);
  return value;
}

function recordKey(record: ConsumedRecord): Buffer {
  if (record.key === undefined) throw new RecordParseError("the record has no key");
  return record.key;
}

/** Unsigned integer of 1 to 16 bytes in either byte order (u128 nonces, i64 timestamps). */
function binary(bytes: Buffer, order: "big" | "little", what: string): bigint {
  if (bytes.length === 0 || bytes.length > 16) {
    throw new RecordParseError(`${what} has ${bytes.length} bytes; a number needs 1 to 16`);
  }
  const ordered = order === "big" ? bytes : Buffer.from(bytes).reverse();
  return BigInt(`0x${ordered.toString("hex")}`);
}

function decimal(bytes: Buffer, what: string): bigint {
  const s = text(bytes, what).trim();
  if (!/^-?\d+$/.test(s)) throw new RecordParseError(`${what} ${JSON.stringify(s.slice(0, 40))} is not an integer`);
  return BigInt(s);
}

/** `Name` or `Name(argument)`. */
function parseSpec(spec: string): { name: string; argument: string | undefined } {
  const match = /^\s*([A-Za-z0-9]+)\s*(?:\((.*)\))?\s*$/s.exec(spec);
  if (!match) throw new Error(`${JSON.stringify(spec)} is not Name or Name(argument)`);
  return { name: match[1] as string, argument: match[2] };
}

function needArgument(name: string, argument: string | undefined): string {
  if (argument === undefined || argument === "") throw new Error(`${name} needs an argument: ${name}(...)`);
  return argument;
}

function noArgument(name: string, argument: string | undefined): void {
  if (argument !== undefined) throw new Error(`${name} takes no argument`);
}

export const STRING_PARSERS = ["Static(s)", "RecordHeader(name)", "RecordKey", "RecordPartition"];
export const NUMBER_PARSERS = [
  "None",
  "RecordHeaderBigEndian(name)",
  "RecordHeaderLittleEndian(name)",
  "RecordHeaderUtf8(name)",
  "RecordKeyBigEndian",
  "RecordKeyLittleEndian",
  "RecordKeyUtf8",
  "RecordOffset",
  "RecordPartition",
];

/** Builds a string parser from its config spec; throws Error (a config error) on a bad spec. */
export function stringParser(spec: string): StringParser {
  const { name, argument } = parseSpec(spec);
  switch (name) {
    case "Static": {
      const value = needArgument(name, argument);
      return () => value;
    }
    case "RecordHeader": {
      const headerName = needArgument(name, argument);
      return (r) => text(header(r, headerName), `header ${JSON.stringify(headerName)}`);
    }
    case "RecordKey":
      noArgument(name, argument);
      return (r) => text(recordKey(r), "the record key");
    case "RecordPartition":
      noArgument(name, argument);
      return (r) => String(r.partition);
    default:
      throw new Error(`unknown string parser ${JSON.stringify(name)} (known: ${STRING_PARSERS.join(", ")})`);
  }
}

/** Builds a number parser from its config spec; throws Error (a config error) on a bad spec. */
export function numberParser(spec: string): NumberParser {
  const { name, argument } = parseSpec(spec);
  const headerNamed = () => needArgument(name, argument);
  switch (name) {
    case "None":
      noArgument(name, argument);
      return () => undefined;
    case "RecordHeaderBigEndian": {
      const h = headerNamed();
      return (r) => binary(header(r, h), "big", `header ${JSON.stringify(h)}`);
    }
    case "RecordHeaderLittleEndian": {
      const h = headerNamed();
      return (r) => binary(header(r, h), "little", `header ${JSON.stringify(h)}`);
    }
    case "RecordHeaderUtf8": {
      const h = headerNamed();
      return (r) => decimal(header(r, h), `header ${JSON.stringify(h)}`);
    }
    case "RecordKeyBigEndian":
      noArgument(name, argument);
      return (r) => binary(recordKey(r), "big", "the record key");
    case "RecordKeyLittleEndian":
      noArgument(name, argument);
      return (r) => binary(recordKey(r), "little", "the record key");
    case "RecordKeyUtf8":
      noArgument(name, argument);
      return (r) => decimal(recordKey(r), "the record key");
    case "RecordOffset":
      noArgument(name, argument);
      return (r) => r.offset;
    case "RecordPartition":
      noArgument(name, argument);
      return (r) => BigInt(r.partition);
    default:
      throw new Error(`unknown number parser ${JSON.stringify(name)} (known: ${NUMBER_PARSERS.join(", ")})`);
  }
}
