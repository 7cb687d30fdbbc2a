// The one error hierarchy of klstore. Each error carries the facts a caller needs to act;
// the services map `code` to a gRPC status in one place, the CLI prints `message`.

export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "RESOURCE_EXHAUSTED"
  | "ABORTED"
  | "OUT_OF_RANGE"
  | "FAILED_PRECONDITION"
  | "DATA_LOSS"
  | "UNAVAILABLE"
  | "INTERNAL";

export abstract class KlstoreError extends Error {
  abstract readonly code: ErrorCode;
  /** True when repeating the same call may succeed without the caller changing anything. */
  readonly retryable: boolean = false;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class InvalidArgument extends KlstoreError {
  readonly code = "INVALID_ARGUMENT";
  readonly field: string;
  /** What is wrong with the field, without its name (for callers that name it otherwise). */
  readonly reason: string;

  constructor(field: string, reason: string) {
    super(`invalid ${field}: ${reason}`);
    this.field = field;
    this.reason = reason;
  }
}

export class KeyspaceNotFound extends KlstoreError {
  readonly code = "NOT_FOUND";
  readonly keyspace: string;

  constructor(keyspace: string) {
    super(`keyspace ${JSON.stringify(keyspace)} does not exist`);
    this.keyspace = keyspace;
  }
}

export class KeyspaceAlreadyExists extends KlstoreError {
  readonly code = "ALREADY_EXISTS";
  readonly keyspace: string;

  constructor(keyspace: string) {
    super(`keyspace ${JSON.stringify(keyspace)} already exists`);
    this.keyspace = keyspace;
  }
}

/** A bounded queue is full; the caller should slow down and retry later. */
export class ResourceExhausted extends KlstoreError {
  readonly code = "RESOURCE_EXHAUSTED";
  override readonly retryable = true;
}

/**
 * Another writer committed to this key first (its claim on the next offset won). Nothing
 * of the failed call was acknowledged; the writer has dropped its cached state for the key
 * and re-reads it from storage on the next call, so a retry is safe.
 */
export class Fenced extends KlstoreError {
  readonly code = "ABORTED";
  override readonly retryable = true;
  readonly keyspace: string;
  readonly key: string;
  readonly offset: bigint;

  constructor(keyspace: string, key: string, offset: bigint) {
    super(
      `another writer committed offset ${offset} of key ${JSON.stringify(key)} in keyspace ${JSON.stringify(keyspace)} first; retry`,
    );
    this.keyspace = keyspace;
    this.key = key;
    this.offset = offset;
  }
}

/**
 * A forward read was to resume at an offset that a trim (or retention) has removed since:
 * serving on from the list's new start would hide a gap, so the reader is told instead.
 */
export class Trimmed extends KlstoreError {
  readonly code = "OUT_OF_RANGE";
  readonly resumeOffset: bigint;
  readonly firstOffset: bigint;

  constructor(resumeOffset: bigint, firstOffset: bigint) {
    super(
      `items from offset ${resumeOffset} were trimmed; the list now starts at ${firstOffset} (read again from there, e.g. with start_offset)`,
    );
    this.resumeOffset = resumeOffset;
    this.firstOffset = firstOffset;
  }
}

/** A watch cursor older than the change log keeps (docs/watch.md). */
export class CursorExpired extends KlstoreError {
  readonly code = "OUT_OF_RANGE";
}

/** An object in storage does not match what its name or the format promises. */
export class CorruptObject extends KlstoreError {
  readonly code = "DATA_LOSS";
  readonly objectKey: string;

  constructor(objectKey: string, reason: string) {
    super(`corrupt object ${objectKey}: ${reason}`);
    this.objectKey = objectKey;
  }
}

/** The storage backend failed in a way that retrying later may fix. */
export class StorageUnavailable extends KlstoreError {
  readonly code = "UNAVAILABLE";
  override readonly retryable = true;
}

/** The writer is shutting down and takes no more work; another instance (or a retry) will. */
export class ShuttingDown extends KlstoreError {
  readonly code = "UNAVAILABLE";
  override readonly retryable = true;
}

export class InternalError extends KlstoreError {
  readonly code = "INTERNAL";
}

/**
 * A request for a key another writer shard owns could not be settled there: the owner was
 * unreachable, or the stream to it failed before it answered (the outcome is then unknown:
 * resend, with nonces, to know), or the shards disagree about the shard list.
 */
export class OwnerUnavailable extends KlstoreError {
  readonly code = "UNAVAILABLE";
  override readonly retryable = true;
}

/**
 * The store is written through the shared log (docs/log.md) and this process would write or
 * read it per key only: a per-key writer would commit offsets the logs already hold, a
 * reader without log tails would miss every item not yet materialized.
 */
export class WrittenThroughLog extends KlstoreError {
  readonly code = "FAILED_PRECONDITION";
  /** The store, as its URL describes it. */
  readonly store: string;

  constructor(store: string, instead: string) {
    super(`${store} is written through the shared log ([log] enabled, docs/log.md): ${instead}`);
    this.store = store;
  }
}
