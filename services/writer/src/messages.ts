// Proto messages <-> engine values for the writer. Range checks stay in the engine, which
// reports them as InvalidArgument with the field's name.

import { create } from "@bufbuild/protobuf";
import { type Insertion, InvalidArgument, type ItemOutcome } from "@klstore/core";
import {
  AckMode,
  Compression,
  fromUint128,
  type Insertion as InsertionMessage,
  ItemOutcome_AppendedSchema,
  ItemOutcome_DuplicateSchema,
  type ItemOutcome as ItemOutcomeMessage,
  ItemOutcomeSchema,
  PackedFormatError,
  packOutcomes,
  unpackInsertions,
} from "@klstore/proto";

/** A request's insertions, from whichever form it carries them in (never both). */
export function toInsertions(
  request: { insertions: readonly InsertionMessage[]; packedInsertions: Uint8Array },
  maxItems: number,
): Insertion[] {
  if (request.packedInsertions.byteLength === 0) {
    return request.insertions.map((m) => ({
      value: m.value,
      nonce: fromUint128(m.nonce),
      timestamp: m.timestampMillis,
    }));
  }
  if (request.insertions.length > 0) {
    throw new InvalidArgument("packed_insertions", "set together with insertions; send the items in one form");
  }
  try {
    return unpackInsertions(request.packedInsertions, maxItems);
  } catch (err) {
    if (err instanceof PackedFormatError) throw new InvalidArgument("packed_insertions", err.message);
    throw err;
  }
}

/** An append with nothing to append is a client's mistake (a field left unset), not a no-op. */
export function checkHasInsertions(request: {
  insertions: readonly InsertionMessage[];
  packedInsertions: Uint8Array;
}): void {
  if (request.insertions.length === 0 && request.packedInsertions.byteLength === 0) {
    throw new InvalidArgument("insertions", "an append needs at least one insertion (insertions or packed_insertions)");
  }
}

/** The engine's names of an insertion's parts (SPEC.md's), by the request's. */
const INSERTION_FIELDS: Record<string, string> = { value: "value", nonce: "nonce", timestamp: "timestamp_millis" };

/**
 * An engine error in the request's terms. The engine names an append's items as SPEC.md
 * does (`items[3].timestamp`); the request sent `insertions[3].timestamp_millis`, or all
 * of them in the one field `packed_insertions`.
 */
export function inRequestFields(err: unknown, packed: boolean): unknown {
  if (!(err instanceof InvalidArgument)) return err;
  const match = /^items(?:\[(\d+)\]\.(\w+))?$/.exec(err.field);
  if (!match) return err;
  const [, index, part] = match;
  if (index === undefined) return new InvalidArgument(packed ? "packed_insertions" : "insertions", err.reason);
  const field = INSERTION_FIELDS[part as string] ?? (part as string);
  if (packed) return new InvalidArgument("packed_insertions", `insertion ${index}'s ${field}: ${err.reason}`);
  return new InvalidArgument(`insertions[${index}].${field}`, err.reason);
}

/** The outcome fields of an answer, in the form the request's insertions came in. */
export interface OutcomeFields {
  outcomes: ItemOutcomeMessage[];
  packedOutcomes?: Uint8Array;
}

export function toOutcomeFields(outcomes: readonly ItemOutcome[], packed: boolean): OutcomeFields {
  if (!packed) return { outcomes: toOutcomeMessages(outcomes) };
  return {
    outcomes: [],
    packedOutcomes: packOutcomes(outcomes.map((o) => (o.kind === "appended" ? o : undefined))),
  };
}

function toOutcomeMessages(outcomes: readonly ItemOutcome[]): ItemOutcomeMessage[] {
  return outcomes.map((o) =>
    o.kind === "appended"
      ? create(ItemOutcomeSchema, {
          outcome: {
            case: "appended",
            value: create(ItemOutcome_AppendedSchema, { offset: o.offset, timestampMillis: o.timestamp }),
          },
        })
      : create(ItemOutcomeSchema, { outcome: { case: "duplicate", value: create(ItemOutcome_DuplicateSchema) } }),
  );
}

export function toCompression(c: Compression): "none" | "zstd" {
  if (c === Compression.ZSTD) return "zstd";
  if (c === Compression.NONE || c === Compression.UNSPECIFIED) return "none";
  // A value from a newer API (or a typo): storing as "none" would silently drop the request.
  throw new InvalidArgument("compression", `${c} is not a known Compression value`);
}

/** Unknown values are refused rather than taken for the default. */
export function checkAckMode(mode: AckMode): void {
  if (mode !== AckMode.UNSPECIFIED && mode !== AckMode.DURABLE && mode !== AckMode.ACCEPTED) {
    throw new InvalidArgument("ack_mode", `${mode} is not a known AckMode value`);
  }
}
