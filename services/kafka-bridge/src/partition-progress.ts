// Which offset of each partition may be committed: the one after the longest run of
// records, from the oldest outstanding one, whose appends are durable (or that were
// handled as bad records). Records of one partition settle out of order (different keys
// flush independently), so a later durable record must not let the commit pass an earlier
// one still in flight.

interface Outstanding {
  readonly offset: bigint;
  settled: boolean;
}

export interface CommitPoint {
  readonly topic: string;
  readonly partition: number;
  /** The next offset to consume: every record before it is durable. */
  readonly offset: bigint;
  readonly leaderEpoch: number;
}

class PartitionProgress {
  readonly outstanding: Outstanding[] = [];
  committable: bigint | undefined;
  committed: bigint | undefined;
  leaderEpoch = -1;
}

export class CommitTracker {
  private readonly partitions = new Map<string, PartitionProgress & { topic: string; partition: number }>();

  /** Registers a consumed record; call the returned function once it is durable or handled. */
  track(topic: string, partition: number, offset: bigint, leaderEpoch: number): () => void {
    const id = `${topic}\u0000${partition}`;
    let progress = this.partitions.get(id);
    if (!progress) {
      progress = Object.assign(new PartitionProgress(), { topic, partition });
      this.partitions.set(id, progress);
    }
    progress.leaderEpoch = leaderEpoch;
    const entry: Outstanding = { offset, settled: false };
    progress.outstanding.push(entry);
    const p = progress;
    return () => {
      entry.settled = true;
      while (p.outstanding.length > 0 && (p.outstanding[0] as Outstanding).settled) {
        p.committable = (p.outstanding.shift() as Outstanding).offset + 1n;
      }
    };
  }

  /** Partitions whose commit point moved since the last `markCommitted`. */
  pending(): CommitPoint[] {
    const points: CommitPoint[] = [];
    for (const p of this.partitions.values()) {
      if (p.committable !== undefined && p.committable !== p.committed) {
        points.push({ topic: p.topic, partition: p.partition, offset: p.committable, leaderEpoch: p.leaderEpoch });
      }
    }
    return points;
  }

  markCommitted(points: readonly CommitPoint[]): void {
    for (const point of points) {
      const p = this.partitions.get(`${point.topic}\u0000${point.partition}`);
      if (p) p.committed = point.offset;
    }
  }

  /** The last committed offset of each partition, by "topic\u0000partition". */
  committedOffsets(): Map<string, bigint> {
    const offsets = new Map<string, bigint>();
    for (const [id, p] of this.partitions) if (p.committed !== undefined) offsets.set(id, p.committed);
    return offsets;
  }

  /** Records consumed and not yet settled, across partitions. */
  get inFlight(): number {
    let n = 0;
    for (const p of this.partitions.values()) n += p.outstanding.filter((o) => !o.settled).length;
    return n;
  }
}
