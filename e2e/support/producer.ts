// A producer as users run one for exactly-once delivery: each key's items carry nonces
// 0, 1, 2, ...; a failed append is resent with the same nonce until it is acknowledged, so
// whatever happens to the shards, every item is stored once and none is skipped.

import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import type { KlstoreClient } from "@klstore/client";

export interface ProducerReport {
  /** Per key: nonces acknowledged (all of 0 ... acked-1). */
  readonly acked: Map<string, bigint>;
  /** Append attempts that failed and were resent. */
  readonly retries: number;
  /** Status codes of those failures. */
  readonly failureCodes: Map<string, number>;
}

export function valueOf(key: string, nonce: bigint): string {
  return `${key}:${nonce}`;
}

/**
 * Appends to every key until `stop` aborts; resolves with what was acknowledged. Each
 * attempt goes through one of `clients` at random: clients with different shard lists make
 * two shards write the same key in turn, which only fencing keeps consistent.
 */
export async function produce(
  clients: readonly KlstoreClient[],
  keyspace: string,
  keys: readonly string[],
  stop: AbortSignal,
  options: { acceptedOnly?: boolean; pauseMillis?: number } = {},
): Promise<ProducerReport> {
  const acked = new Map<string, bigint>(keys.map((k) => [k, 0n]));
  const failureCodes = new Map<string, number>();
  let retries = 0;
  await Promise.all(
    keys.map(async (key) => {
      let nonce = 0n;
      while (!stop.aborted) {
        try {
          const client = clients[Math.floor(Math.random() * clients.length)] as KlstoreClient;
          await client.append(keyspace, key, [{ value: valueOf(key, nonce), nonce }], {
            acceptedOnly: options.acceptedOnly,
          });
          acked.set(key, ++nonce);
          if (options.pauseMillis) await sleep(options.pauseMillis);
        } catch (err) {
          const code = (err as { code?: number }).code ?? -1;
          // Only what a retry can fix is retried; anything else is a bug the test must see.
          if (code === status.INVALID_ARGUMENT || code === status.NOT_FOUND || code === -1) throw err;
          const name = status[code] ?? String(code);
          failureCodes.set(name, (failureCodes.get(name) ?? 0) + 1);
          retries++;
          await sleep(50);
        }
      }
    }),
  );
  return { acked, retries, failureCodes };
}
