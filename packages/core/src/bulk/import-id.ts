// An import's identity: sha256 of how it is read (keyspace, format, column names) followed
// by the whole content. Running the same file into the same keyspace the same way again is
// therefore the same import, and resumes it; anything else is a new import.

import { createHash, type Hash } from "node:crypto";

export interface ImportIdentity {
  readonly keyspace: string;
  /** How the content is read, e.g. { format: "csv", keyColumn: "key" }: part of the identity. */
  readonly reading: Readonly<Record<string, string>>;
}

/** Matches a well-formed import id (lower-case hex sha256). */
export const IMPORT_ID_PATTERN = /^[0-9a-f]{64}$/;

/**
 * A hash seeded with the identity; feed it the content and `digest("hex")` is the id.
 * Streamed, so a file of any size is identified without holding it.
 */
export function importIdHash(identity: ImportIdentity): Hash {
  const hash = createHash("sha256");
  const reading = Object.entries(identity.reading).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // JSON with a length prefix keeps the header unambiguous whatever the content starts with.
  const header = Buffer.from(JSON.stringify({ klstoreImport: 1, keyspace: identity.keyspace, reading }));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(header.byteLength);
  hash.update(length);
  hash.update(header);
  return hash;
}
