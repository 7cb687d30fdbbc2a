// Which of an import's batches of a key are stored, read back from the key's claims. Each
// import batch is claimed with the tag `import:{id}:{lastLine}`; a key's batches are
// committed in file order, so the newest landed one tells how far the key got. A claim
// counts as landed iff it is the highest generation at its offset and the key's next
// offset is past it: a claim whose data write never happened is sealed and either claimed
// again with a higher generation or still the key's end (docs/fencing.md).

import type { KeyLayout } from "../format/layout.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { decodeClaim, recoverKeyState } from "../writer/fencing.ts";
import { listAll } from "../writer/key-state.ts";

const TAG_PREFIX = "import:";

export function importClaimTag(importId: string, lastLine: number): string {
  return `${TAG_PREFIX}${importId}:${lastLine}`;
}

/** The last line of a batch of `importId` from its claim tag; undefined for anything else. */
export function lineOfImportTag(tag: string | undefined, importId: string): number | undefined {
  const prefix = `${TAG_PREFIX}${importId}:`;
  if (tag === undefined || !tag.startsWith(prefix)) return undefined;
  const line = Number(tag.slice(prefix.length));
  return Number.isSafeInteger(line) && line > 0 ? line : undefined;
}

export interface LandedBatch {
  /** Last line of the newest stored batch of this import in the key. */
  readonly lastLine: number;
  /** The offset that batch was claimed at (its first item). */
  readonly offset: bigint;
}

/**
 * Finds the newest stored batch of `importId` in a key among the claims at offsets >= `from`.
 * It first recovers the key as a writer does, sealing a claim left without data at the key's
 * end: after that no claim this reads can still land, so the answer cannot go stale.
 */
export async function findLandedBatch(
  store: ObjectStore,
  layout: KeyLayout,
  importId: string,
  from: bigint,
  readConcurrency: number,
): Promise<LandedBatch | undefined> {
  const { tail } = await recoverKeyState(store, layout);
  const listed = await listAll(store, layout.claimPrefix, layout.claimKey(from, 0).replace(/_g0$/, ""));
  const newestGeneration = new Map<bigint, { key: string; generation: number }>();
  for (const { key } of listed) {
    const claim = layout.parseClaimKey(key);
    if (!claim || claim.offset < from || claim.offset >= tail.nextOffset) continue;
    const seen = newestGeneration.get(claim.offset);
    if (!seen || seen.generation < claim.generation) newestGeneration.set(claim.offset, { key, ...claim });
  }
  const candidates = [...newestGeneration.entries()].sort(([a], [b]) => (a > b ? -1 : a < b ? 1 : 0));
  // Newest first, a few GETs at a time: the newest batch of this import is usually among the
  // first read, and reading stops there.
  for (let i = 0; i < candidates.length; i += readConcurrency) {
    const window = candidates.slice(i, i + readConcurrency);
    const bodies = await Promise.all(window.map(([, c]) => store.get(c.key)));
    for (let j = 0; j < window.length; j++) {
      const [offset, claim] = window[j] as [bigint, { key: string }];
      const body = bodies[j];
      if (!body) continue; // deleted since the LIST: nothing deletes claims but a keyspace's removal
      const lastLine = lineOfImportTag(decodeClaim(claim.key, body.body).tag, importId);
      if (lastLine !== undefined) return { lastLine, offset };
    }
  }
  return undefined;
}
