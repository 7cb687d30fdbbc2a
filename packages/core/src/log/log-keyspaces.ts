// Keyspaces created on the log (docs/log.md, "Keys of new slots"). Every per-key object of
// such a keyspace is written by a slot owner (materialization, trims), because no other
// writer runs on a store with logs (log-presence.ts); so a key of a slot whose first record
// this writer created, and that this writer has not materialized, has none: its state needs
// no LIST. A keyspace created before the log has no marker and keeps the LIST.

import { KeyspaceAlreadyExists } from "../errors.ts";
import { KeyspaceLayout } from "../format/layout.ts";
import { logKeyspaceMarkerKey } from "../format/log-layout.ts";
import { type ObjectStore, PreconditionFailed } from "../storage/object-store.ts";

export class LogKeyspaces {
  private readonly store: ObjectStore;
  private readonly prefix: string;
  /** Whether each keyspace seen has the marker: it never changes once the keyspace exists. */
  private readonly known = new Map<string, Promise<boolean>>();

  constructor(store: ObjectStore, prefix: string) {
    this.store = store;
    this.prefix = prefix;
  }

  /**
   * Marks a keyspace about to be created. Refuses one that exists: an older keyspace must
   * never get the marker. The marker comes before the config, so a keyspace another writer
   * sees exists has its marker already.
   */
  async mark(keyspace: string): Promise<void> {
    const layout = new KeyspaceLayout(this.prefix, keyspace);
    if (await this.store.get(layout.configKey)) throw new KeyspaceAlreadyExists(keyspace);
    try {
      await this.store.put(logKeyspaceMarkerKey(this.prefix, layout.segment), new Uint8Array(0), {
        ifNoneMatch: true,
      });
    } catch (err) {
      // A creator racing this one marked it: the same marker.
      if (!(err instanceof PreconditionFailed)) throw err;
    }
    this.known.set(keyspace, Promise.resolve(true));
  }

  /** Whether the keyspace (which exists) was created on the log; one GET per keyspace. */
  createdOnLog(keyspace: string): Promise<boolean> {
    let known = this.known.get(keyspace);
    if (!known) {
      const segment = new KeyspaceLayout(this.prefix, keyspace).segment;
      known = this.store.get(logKeyspaceMarkerKey(this.prefix, segment)).then((o) => o !== undefined);
      known.catch(() => this.known.delete(keyspace));
      this.known.set(keyspace, known);
    }
    return known;
  }
}
