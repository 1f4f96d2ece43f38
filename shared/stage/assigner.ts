/**
 * Which shards this replica consumes. The assigner calls acquire(shard) before this replica may
 * consume a shard and release(shard) when it must let go; release resolves only after everything
 * the shard handed out is finished and acked. `leaseLost`: the shard's lease ran out before the
 * release, so another replica may already be subscribed to it.
 */
export interface ShardCallbacks {
  acquire(shard: number): Promise<void>;
  release(shard: number, opts?: { leaseLost?: boolean }): Promise<void>;
}

export interface ShardAssigner {
  start(cb: ShardCallbacks): Promise<void>;
  /** Releases every owned shard (graceful hand-over). Idempotent. */
  stop(): Promise<void>;
  owned(): number[];
}

/** Owns every shard: a single replica, or tests of one stage in isolation. */
export class StaticAssigner implements ShardAssigner {
  private cb: ShardCallbacks | null = null;
  private readonly mine = new Set<number>();
  private stopping: Promise<void> | null = null;

  constructor(private readonly shards: number) {}

  async start(cb: ShardCallbacks): Promise<void> {
    this.cb = cb;
    for (let i = 0; i < this.shards; i++) {
      await cb.acquire(i);
      this.mine.add(i);
    }
  }

  owned(): number[] {
    return [...this.mine];
  }

  stop(): Promise<void> {
    return (this.stopping ??= (async () => {
      const cb = this.cb;
      if (!cb) return;
      await Promise.all([...this.mine].map((s) => cb.release(s)));
      this.mine.clear();
    })());
  }
}
