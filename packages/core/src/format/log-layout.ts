// Where the shared log's objects live (docs/log.md, "Object names"): segments under
// `.logs/{writer}/{lane}/`, slot records under `.slots/{slot}/`. Both folders start with a
// dot, which no keyspace's segment can (segments.ts), so they never meet a keyspace's names.

import { SLOT_COUNT } from "@klstore/sharding";
import { InvalidArgument } from "../errors.ts";
import { padOffset, U64_MAX } from "./layout.ts";
import type { LogId } from "./log-segment.ts";

export { SLOT_COUNT };

const WRITER_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
const SEGMENT_NAME = /^s(\d{20})$/;
const VERSION_NAME = /^v(\d{20})$/;

/** A writer's name as it appears in object keys: plain characters, not starting with '.'. */
export function checkWriterName(writer: string): string {
  if (!WRITER_NAME.test(writer)) {
    throw new InvalidArgument(
      "writer.name",
      `${JSON.stringify(writer)} must be 1-128 characters of [A-Za-z0-9._-], not starting with '.'`,
    );
  }
  return writer;
}

/** The objects of one log (one lane of one writer). */
export class LogLayout {
  readonly log: LogId;
  /** Folder of the log's segments. */
  readonly folder: string;

  constructor(prefix: string, log: LogId) {
    checkWriterName(log.writer);
    if (!Number.isInteger(log.lane) || log.lane < 0 || log.lane > 0xffff) {
      throw new InvalidArgument("lane", `${log.lane} is outside 0..65535`);
    }
    this.log = log;
    this.folder = `${prefix}.logs/${log.writer}/${log.lane}/`;
  }

  segmentKey(seq: bigint): string {
    return `${this.folder}s${padOffset(seq)}`;
  }

  /** The sequence number of one of this log's segment keys; undefined for anything else. */
  parseSegmentKey(objectKey: string): bigint | undefined {
    if (!objectKey.startsWith(this.folder)) return undefined;
    const m = SEGMENT_NAME.exec(objectKey.slice(this.folder.length));
    return m ? BigInt(m[1] as string) : undefined;
  }

  /** LIST start-after value whose results are the segments from `seq` on. */
  startAfterForSeq(seq: bigint): string {
    return seq === 0n ? this.folder : this.segmentKey(seq - 1n);
  }
}

/** Folder of every writer's logs: one sub-folder per writer, one below it per lane. */
export function logsFolder(prefix: string): string {
  return `${prefix}.logs/`;
}

/**
 * The marker of a keyspace created on the log (docs/log.md, "Keys of new slots"): all its
 * per-key objects come from slot owners. `segment` is the keyspace's encoded name.
 */
export function logKeyspaceMarkerKey(prefix: string, segment: string): string {
  return `${prefix}.slots/keyspaces/${segment}`;
}

/** The versions of one slot's record, newest first in a LIST (docs/log.md, "Slot records"). */
export class SlotLayout {
  readonly slot: number;
  readonly folder: string;

  constructor(prefix: string, slot: number) {
    if (!Number.isInteger(slot) || slot < 0 || slot >= SLOT_COUNT) {
      throw new InvalidArgument("slot", `${slot} is outside 0..${SLOT_COUNT - 1}`);
    }
    this.slot = slot;
    this.folder = `${prefix}.slots/${String(slot).padStart(4, "0")}/`;
  }

  /** Versions are written inverted, so the newest sorts first and a LIST of one finds it. */
  versionKey(version: bigint): string {
    return `${this.folder}v${padOffset(U64_MAX - version)}`;
  }

  parseVersionKey(objectKey: string): bigint | undefined {
    if (!objectKey.startsWith(this.folder)) return undefined;
    const m = VERSION_NAME.exec(objectKey.slice(this.folder.length));
    if (!m) return undefined;
    const inverted = BigInt(m[1] as string);
    return inverted <= U64_MAX ? U64_MAX - inverted : undefined;
  }
}
