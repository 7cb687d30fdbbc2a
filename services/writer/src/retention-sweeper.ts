// The retention sweep: every `intervalMillis`, each writer shard applies its keyspaces'
// retention to the keys it owns (docs/operations.md, "Retention and trim"). Keys are found
// by listing key folders, so a key nobody writes any more still ages out; each shard
// trims only the keys the ring gives it, so shards never trim the same key at once. The
// same sweep deletes change-log objects past the change log's retention (docs/watch.md),
// done for each keyspace by one shard: the owner of the reserved name ".changes".

import { type AppendEngine, decodeSegment, expireChangeObjects, listKeys, type ObjectStore } from "@klstore/core";
import type { Logger } from "@klstore/service-runtime";
import type { ShardRing } from "@klstore/sharding";
import type { WriterMetrics } from "./writer-metrics.ts";

export interface RetentionSweeperDeps {
  readonly writer: AppendEngine;
  readonly store: ObjectStore;
  readonly prefix: string;
  readonly ring: ShardRing;
  readonly self: string;
  readonly logger: Logger;
  readonly metrics: WriterMetrics;
}

export interface SweepSummary {
  readonly keyspaces: number;
  /** Change-log objects deleted as expired. */
  readonly expiredChanges: number;
  readonly keys: number;
  readonly trimmedKeys: number;
}

export class RetentionSweeper {
  private readonly deps: RetentionSweeperDeps;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SweepSummary> | undefined;

  constructor(deps: RetentionSweeperDeps) {
    this.deps = deps;
  }

  start(intervalMillis: number): void {
    this.timer = setInterval(() => {
      if (!this.running) void this.sweep().catch((err) => this.deps.logger.warn({ err }, "retention sweep failed"));
    }, intervalMillis);
    this.timer.unref();
  }

  /** One pass over every keyspace with a retention; one at a time. */
  sweep(): Promise<SweepSummary> {
    this.running ??= this.sweepOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => {});
  }

  private async sweepOnce(): Promise<SweepSummary> {
    const { writer, store, prefix, ring, self, logger, metrics } = this.deps;
    let keyspaces = 0;
    let keys = 0;
    let trimmedKeys = 0;
    let expiredChanges = 0;
    for (const segment of await store.listFolders(prefix)) {
      const keyspace = decodeSegment("keyspace", segment);
      if (keyspace === undefined) continue;
      if (ring.ownerOf(keyspace, ".changes").name === self) {
        expiredChanges += await expireChangeObjects(store, prefix, keyspace, BigInt(Date.now())).catch((err) => {
          logger.warn({ err, keyspace }, "expiring change-log objects failed");
          return 0;
        });
      }
      const settings = await writer.readKeyspaceSettings(keyspace).catch(() => undefined);
      if (!settings?.retention) continue;
      keyspaces++;
      const keysOfKeyspace = await listKeys(store, prefix, keyspace).catch((err) => {
        logger.warn({ err, keyspace }, "listing the keys of a keyspace failed");
        return [];
      });
      for (const key of keysOfKeyspace) {
        if (ring.ownerOf(keyspace, key).name !== self) continue;
        keys++;
        try {
          const outcome = await writer.applyRetention(keyspace, key);
          if (outcome && outcome.deletedObjects > 0) {
            trimmedKeys++;
            metrics.trimmed("retention", outcome);
          }
        } catch (err) {
          // One key's failure (say, a racing shard-list change) must not stop the sweep.
          logger.warn({ err, keyspace, key }, "retention of a key failed");
        }
      }
    }
    logger.debug({ keyspaces, keys, trimmedKeys, expiredChanges }, "retention sweep done");
    return { keyspaces, keys, trimmedKeys, expiredChanges };
  }
}
