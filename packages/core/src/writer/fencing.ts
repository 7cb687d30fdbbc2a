// The commit protocol that keeps two writers of one key from committing overlapping
// offsets (docs/fencing.md). A batch at offset N is committed in two conditional writes:
//   1. create claim_o{N}_g{G} (if-none-match): of all writers that believe N is next,
//      exactly one wins; the others learn they are behind and re-read the key.
//   2. create the data object the claim names (if-none-match).
// A data object therefore exists only for a won claim. A claim whose data object is missing
// (its writer died or stalls between 1 and 2) is sealed by the next writer: it creates the
// named data object empty, so a late write by the stalled writer fails, and claims N again
// with generation G+1, after listing again: the claimed batch may have been committed and
// compacted away before the seal, and then the listing shows it. Readers skip empty objects.

import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { CorruptObject, Fenced } from "../errors.ts";
import type { DataObjectName, KeyLayout } from "../format/layout.ts";
import type { DataObject } from "../format/object-chain.ts";
import { type ObjectStore, PreconditionFailed } from "../storage/object-store.ts";
import { type KeyState, readTailAndClaims, stateFromTail } from "./key-state.ts";

/** Identifies this process in the claims it writes (for operators reading a bucket). */
export const WRITER_ID = randomUUID();

/** How often recovery re-reads a key that keeps changing under it before giving up. */
const MAX_RECOVERY_ROUNDS = 16;
/** Pause before re-reading a key whose LIST was caught mid-compaction (times the round). */
const RECOVERY_BACKOFF_MILLIS = 5;

export interface ClaimBody {
  readonly dataKey: string;
  readonly writer: string;
  /**
   * Unique to one commit call: a writer whose claim PUT lost its response reads the claim
   * back, and only its own call wrote these bytes (storage/s3.ts). Absent in older claims.
   */
  readonly commit?: string;
  /** What the batch is, for whoever needs to find it again (bulk import: docs/bulk.md). */
  readonly tag?: string;
}

function encodeClaim(body: ClaimBody): Uint8Array {
  return Buffer.from(JSON.stringify(body));
}

export function decodeClaim(objectKey: string, bytes: Uint8Array): ClaimBody {
  try {
    const body = JSON.parse(Buffer.from(bytes).toString("utf8")) as Partial<ClaimBody>;
    const tagOk = body.tag === undefined || typeof body.tag === "string";
    if (typeof body.dataKey === "string" && typeof body.writer === "string" && tagOk) return body as ClaimBody;
  } catch {
    // reported below
  }
  throw new CorruptObject(objectKey, "claim body is not {dataKey, writer, tag?} JSON");
}

/**
 * Commits one batch: claim, then data. On a lost claim or a sealed data name the batch is
 * not committed and Fenced is thrown; the caller must drop its cached state for the key.
 * `claimTag`, when given, is stored in the claim so the batch can be recognized later.
 */
export async function commitBatch(
  store: ObjectStore,
  layout: KeyLayout,
  state: KeyState,
  dataKey: string,
  body: Uint8Array,
  claimTag?: string,
): Promise<void> {
  const offset = state.tail.nextOffset;
  const claim: ClaimBody = {
    dataKey,
    writer: WRITER_ID,
    commit: randomUUID(),
    ...(claimTag === undefined ? {} : { tag: claimTag }),
  };
  try {
    await store.put(layout.claimKey(offset, state.claimGeneration), encodeClaim(claim), { ifNoneMatch: true });
    await store.put(dataKey, body, { ifNoneMatch: true });
  } catch (err) {
    if (err instanceof PreconditionFailed) throw new Fenced(layout.keyspaceLayout.keyspace, layout.key, offset);
    throw err;
  }
}

/** Generations tried for a derived object's name before giving up (each a seal in the way). */
const MAX_DERIVED_NAME_GENERATIONS = 16;

/**
 * Writes an object derived from committed ones (a compaction's merge, a trim's kept suffix).
 * Its name follows from its items, so an object already under that name normally holds the
 * same bytes (another writer did the same work), and the write counts as done. Unless that
 * object is a seal (empty): a batch retried after a seal holds the seal's items, and merging
 * or cutting it can give back the seal's very name. Then the next generation's name is
 * taken; treating the seal as the output lost the items once (docs/fencing.md).
 */
export async function writeDerivedObject(
  store: ObjectStore,
  layout: KeyLayout,
  name: DataObjectName,
  body: Uint8Array,
): Promise<DataObject> {
  let generation = name.generation ?? 0;
  for (let attempt = 0; attempt < MAX_DERIVED_NAME_GENERATIONS; attempt++) {
    const candidate: DataObjectName = { ...name, generation };
    const key = layout.dataKey(candidate);
    try {
      await store.put(key, body, { ifNoneMatch: true });
      return { key, name: candidate };
    } catch (err) {
      if (!(err instanceof PreconditionFailed)) throw err;
    }
    const existing = (await store.list(key, { maxKeys: 1 })).objects.find((o) => o.key === key);
    if (existing && existing.size > 0) return { key, name: candidate };
    if (existing) generation++; // a seal; gone since (deleted meanwhile): the same name again
  }
  throw new PreconditionFailed(layout.dataKey(name)); // the caller re-reads the key
}

/**
 * A trim writes the kept part of the object its point falls in as a new object ending where
 * that one ends, then deletes the old one: until then the new one looks like a leftover
 * hidden under the old. Deleting it would lose the kept items, so recovery leaves every
 * object of that shape alone (a compaction's last input has it too: it stays, hidden, until
 * a trim below it or a later compaction's output covers it).
 */
function mayBeTrimSuffix(leftover: DataObject, chain: readonly DataObject[]): boolean {
  return chain.some(
    (o) => o.name.firstOffset < leftover.name.firstOffset && o.name.lastOffset === leftover.name.lastOffset,
  );
}

/**
 * Reads a key's state from storage, finishing what crashed writers left: leftover inputs
 * of an interrupted compaction are deleted, and an orphaned claim at the next offset is
 * sealed so its generation can be taken again.
 */
export async function recoverKeyState(store: ObjectStore, layout: KeyLayout): Promise<KeyState> {
  // The data name of the newest claim once it is known sealed (by this recovery or another).
  // A seal is trusted only by a round whose LIST began after the seal was in place: a LIST
  // of an earlier round may have missed the claimed batch, committed and compacted.
  let sealedBeforeThisRound: string | undefined;
  for (let round = 0; round < MAX_RECOVERY_ROUNDS; round++) {
    const { tail, claims, beyond } = await readTailAndClaims(store, layout);
    if (beyond) {
      // The data LIST missed committed objects: a compaction deleted its inputs while its
      // output was not yet listed. Taking or sealing this offset would hand out a committed
      // one again; read again once the compaction is through.
      await sleep(RECOVERY_BACKOFF_MILLIS * (round + 1));
      continue;
    }
    const deletable = tail.leftovers.filter((o) => !mayBeTrimSuffix(o, tail.chain));
    if (deletable.length > 0) await store.delete(deletable.map((o) => o.key));
    const probe = stateFromTail(tail, 0);
    const newest = claims.at(-1);
    if (!newest) return probe;
    const claimed = await store.get(newest.key);
    if (!claimed) continue; // trimmed or changed under us: read again
    const { dataKey } = decodeClaim(newest.key, claimed.body);
    try {
      await store.put(dataKey, new Uint8Array(0), { ifNoneMatch: true });
    } catch (err) {
      // The claim's data object exists now: either it was written after our LIST (a live
      // writer finished) or it is already sealed. Either way the listing will show it.
      if (err instanceof PreconditionFailed) {
        const existing = await store.get(dataKey);
        const sealed = existing !== undefined && existing.body.byteLength === 0;
        if (sealed && sealedBeforeThisRound === dataKey) return stateFromTail(tail, newest.generation + 1);
        sealedBeforeThisRound = sealed ? dataKey : undefined;
        continue;
      }
      throw err;
    }
    // Sealed. The claimed batch may still have been committed before the seal and then
    // compacted into an object this round's LIST did not show yet: read the key again; the
    // next round sees either that object or this seal (and takes the next generation).
    sealedBeforeThisRound = dataKey;
  }
  throw new Fenced(layout.keyspaceLayout.keyspace, layout.key, -1n);
}
