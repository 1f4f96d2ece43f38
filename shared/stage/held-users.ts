/**
 * The held users of a replica's shards, in memory (ordering.ts): what lets a message of a user who
 * is not held go without a Redis round trip, and what the hold gauges and the expiry sweep read.
 */

export interface HeldUser {
  /** Ms its current head took the head. */
  since: number;
  /** Its head is a dead letter (DLQ_ORDERING_MODE=strict): it waits for an operator, without TTL. */
  dead: boolean;
}

export interface HeldRef {
  shard: number;
  user: string;
  since: number;
}

export class HeldUsers {
  private readonly shards = new Map<number, Map<string, HeldUser>>();

  constructor(private readonly changed: () => void) {}

  hasShard(shard: number): boolean {
    return this.shards.has(shard);
  }

  loadShard(shard: number, users: Map<string, HeldUser>): void {
    this.shards.set(shard, users);
    this.changed();
  }

  unloadShard(shard: number): void {
    this.shards.delete(shard);
    this.changed();
  }

  has(shard: number, user: string): boolean {
    return this.shards.get(shard)?.has(user) ?? false;
  }

  /**
   * Only for a loaded shard: a handler that outlived its shard's release must not leave a partial
   * set behind, which a later take-over of the shard would take for the loaded one (Redis has it all).
   */
  set(shard: number, user: string, held: HeldUser): void {
    const users = this.shards.get(shard);
    if (!users) return;
    const before = users.get(user);
    users.set(user, held);
    if (!before || before.dead !== held.dead) this.changed();
  }

  forget(shard: number, user: string): void {
    if (this.shards.get(shard)?.delete(user)) this.changed();
  }

  /** Users held by a message in retry (not by a dead letter). */
  retrying(): number {
    let n = 0;
    for (const users of this.shards.values()) for (const h of users.values()) if (!h.dead) n++;
    return n;
  }

  /** Age (ms) of the oldest hold by a message in retry, from when its head took the head; 0 without. */
  oldestRetryingAgeMs(now: number): number {
    let oldest = now;
    for (const users of this.shards.values()) for (const h of users.values()) if (!h.dead && h.since < oldest) oldest = h.since;
    return now - oldest;
  }

  /** Holds by a message in retry that no copy has touched for `ttlMs`, the oldest first. */
  stale(now: number, ttlMs: number): HeldRef[] {
    const out: HeldRef[] = [];
    for (const [shard, users] of this.shards) for (const [user, h] of users) if (!h.dead && now - h.since > ttlMs) out.push({ shard, user, since: h.since });
    return out.sort((a, b) => a.since - b.since);
  }

  /** Holds whose head is a dead letter. */
  dead(): HeldRef[] {
    const out: HeldRef[] = [];
    for (const [shard, users] of this.shards) for (const [user, h] of users) if (h.dead) out.push({ shard, user, since: h.since });
    return out;
  }
}
