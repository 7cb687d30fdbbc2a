import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import * as core from "@klstore/core";
import { statusDetails } from "@klstore/proto";
import { ERROR_DOMAIN, RETRY_DELAY_MILLIS, toRequestError, toServiceError } from "./status.ts";

const {
  CorruptObject,
  CursorExpired,
  Fenced,
  InternalError,
  InvalidArgument,
  KeyspaceAlreadyExists,
  KeyspaceNotFound,
  KlstoreError,
  OwnerUnavailable,
  ResourceExhausted,
  ShuttingDown,
  StorageUnavailable,
  Trimmed,
  WrittenThroughLog,
} = core;

/** One instance of every error class; a class missing here fails the first test. */
const SAMPLES: readonly core.KlstoreError[] = [
  new InvalidArgument("filter.start_offset", "outside the unsigned 64-bit range"),
  new KeyspaceNotFound("orders"),
  new KeyspaceAlreadyExists("orders"),
  new ResourceExhausted("writer queue is full"),
  new Fenced("orders", "user/42", 17n),
  new Trimmed(5n, 12n),
  new CursorExpired("the cursor is older than the change log"),
  new CorruptObject("orders/user%2F42/data_o00000000000000000000-o0", "holds 3 bytes"),
  new StorageUnavailable("s3 GET failed"),
  new ShuttingDown("the writer is closing"),
  new OwnerUnavailable("owner shard writer-1 unreachable"),
  new WrittenThroughLog("s3://bucket/folder/", "set [log] enabled=true"),
  new InternalError("a bug"),
];

interface DocumentedReason {
  readonly code: string;
  readonly metadata: readonly string[];
  readonly other: string;
}

/** The reasons table of docs/errors.md: | `REASON` | CODE | meaning | `fact`, ... | other details |. */
function documentedReasons(): Map<string, DocumentedReason> {
  const page = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");
  const section = page.slice(page.indexOf("## Reasons"), page.indexOf("## Statuses without"));
  const reasons = new Map<string, DocumentedReason>();
  for (const line of section.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    const reason = /^`([A-Z_]+)`$/.exec(cells[1] ?? "")?.[1];
    if (!reason) continue;
    const metadata = [...(cells[4] ?? "").matchAll(/`([a-z_]+)`/g)].map((m) => m[1] as string);
    reasons.set(reason, { code: cells[2] as string, metadata, other: cells[5] ?? "" });
  }
  return reasons;
}

/** What a client receives: the status grpc-js would deliver for `err`. */
function delivered(err: unknown): ServiceError {
  const e = toServiceError(err);
  return Object.assign(new Error(e.details), {
    code: e.code,
    details: e.details,
    metadata: e.metadata,
  }) as ServiceError;
}

describe("error statuses (docs/errors.md)", () => {
  it("documents exactly the error classes there are", () => {
    const classes = (Object.values(core) as unknown[]).filter(
      (v): v is typeof KlstoreError => typeof v === "function" && v.prototype instanceof KlstoreError,
    );
    const sampled = new Set(SAMPLES.map((s) => s.constructor));
    for (const c of classes) assert.ok(sampled.has(c), `${c.name}: add a sample here and a row to docs/errors.md`);
    const reasons = SAMPLES.map((s) => statusDetails(delivered(s))?.reason);
    assert.deepEqual([...documentedReasons().keys()].sort(), [...reasons].sort());
  });

  for (const sample of SAMPLES) {
    it(`${sample.name}: code, reason, facts and details as documented`, () => {
      const err = delivered(sample);
      const details = statusDetails(err);
      assert.ok(details?.reason, "an ErrorInfo");
      const doc = documentedReasons().get(details.reason);
      assert.ok(doc, `${details.reason} is documented`);
      assert.equal(status[err.code], doc.code);
      assert.equal(details.domain, ERROR_DOMAIN);
      assert.deepEqual(Object.keys(details.metadata).sort(), [...doc.metadata].sort());
      for (const value of Object.values(details.metadata)) assert.ok(value.length > 0);

      assert.equal(details.fieldViolations.length > 0, /BadRequest/.test(doc.other), "BadRequest");
      if (details.fieldViolations.length > 0) assert.equal(details.fieldViolations[0]?.field, details.metadata.field);
      const resource = /ResourceInfo `(\w+)`/.exec(doc.other)?.[1];
      assert.equal(details.resource?.type, resource, "ResourceInfo");
      assert.equal(details.retryDelayMillis, /RetryInfo/.test(doc.other) ? RETRY_DELAY_MILLIS : undefined);

      // The in-band form (AppendSession) carries the same facts.
      const inBand = toRequestError(sample);
      assert.equal(inBand.code, err.code);
      assert.equal(inBand.reason, details.reason);
      assert.deepEqual({ ...inBand.metadata }, { ...details.metadata });
      assert.equal(inBand.retryable, details.retryDelayMillis !== undefined);
    });
  }

  it("puts TRIMMED's first offset in a field, and the TypeScript reader parses it", () => {
    const details = statusDetails(delivered(new Trimmed(5n, 12n)));
    assert.equal(status.OUT_OF_RANGE, delivered(new Trimmed(5n, 12n)).code);
    assert.deepEqual(details?.metadata, { resume_offset: "5", first_offset: "12" });
    assert.equal(details?.firstOffset, 12n);
    assert.equal(statusDetails(delivered(new Fenced("ks", "k", 3n)))?.firstOffset, undefined);
  });

  it("reports an error outside the hierarchy as INTERNAL_ERROR", () => {
    const err = delivered(new TypeError("x is undefined"));
    assert.equal(err.code, status.INTERNAL);
    assert.equal(statusDetails(err)?.reason, "INTERNAL_ERROR");
    assert.equal(toRequestError(new TypeError("x")).reason, "INTERNAL_ERROR");
  });

  it("relays a forwarded call's status with the owner's details, in band too", () => {
    const owner = delivered(new KeyspaceNotFound("orders"));
    const relayed = delivered(owner);
    assert.equal(relayed.code, status.NOT_FOUND);
    assert.equal(statusDetails(relayed)?.resource?.name, "orders");
    const inBand = toRequestError(owner);
    assert.equal(inBand.reason, "KEYSPACE_NOT_FOUND");
    assert.deepEqual({ ...inBand.metadata }, { keyspace: "orders" });
    // A status gRPC made itself (an unreachable owner) has no details.
    const unreachable = Object.assign(new Error("connect failed"), {
      code: status.UNAVAILABLE,
      details: "connect failed",
      metadata: new Metadata(),
    });
    assert.equal(statusDetails(unreachable), undefined);
    assert.equal(toRequestError(unreachable).reason, "");
    assert.equal(toRequestError(unreachable).retryable, true);
  });
});
