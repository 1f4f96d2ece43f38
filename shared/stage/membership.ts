/**
 * Shard ownership across the replicas of a stage (DESIGN §4).
 *
 * - Membership: each replica heartbeats into a Redis sorted set (score = expiry time); members whose
 *   heartbeat is older than LEASE_TTL_MS are gone.
 * - Assignment: rendezvous hashing with bounded loads over the live members (rendezvous.ts).
 * - Fence: a Redis lease per shard (SET NX PX). A replica consumes a shard only while it holds the
 *   lease. On a graceful hand-over the old owner cancels its consumer, lets everything it holds
 *   finish and ack, and only then deletes the lease, so the new owner cannot process anything from
 *   the shard before the old one is done. After a crash the lease expires after LEASE_TTL_MS; the
 *   broker has already requeued the dead replica's unacked messages, in order, at the head of the
 *   shard.
 * - Single active consumer stays on as the broker-side safety net: even if two replicas believed
 *   they owned a shard, the broker would deliver to one of them only.
 * - Redis down: a replica keeps consuming the shards it holds (SAC still guarantees one consumer)
 *   and takes no new ones until Redis is back.
 */
import type { Runtime } from '../runtime.js';
import type { Stage } from '../topology/names.js';
import type { Logger } from '../logger.js';
import type { ShardAssigner, ShardCallbacks } from './assigner.js';
import { assignShards } from './rendezvous.js';

// KEYS: lease; ARGV: me, ttl. Renews the lease if it is ours.
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
// KEYS: lease; ARGV: me. Deletes the lease if it is ours.
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export class RendezvousAssigner implements ShardAssigner {
  private cb: ShardCallbacks | null = null;
  private readonly mine = new Set<number>();
  private readonly busy = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private leaving = false;
  private readonly releases = new Set<Promise<void>>();
  private readonly log: Logger;
  private readonly membersKey: string;
  private lastMembers = '';

  constructor(
    private readonly rt: Runtime,
    private readonly stage: Stage,
    private readonly opts: { ttlMs: number; tickMs?: number } = { ttlMs: rt.cfg.leaseTtlMs },
  ) {
    this.log = rt.log.child({ component: `${stage}-shards` });
    this.membersKey = rt.keys('members', stage);
  }

  private leaseKey(shard: number): string {
    return this.rt.keys('lease', this.stage, shard);
  }

  owned(): number[] {
    return [...this.mine].sort((a, b) => a - b);
  }

  async start(cb: ShardCallbacks): Promise<void> {
    this.cb = cb;
    await this.tick();
    const every = this.opts.tickMs ?? Math.max(100, Math.min(500, Math.floor(this.opts.ttlMs / 3)));
    this.timer = setInterval(() => {
      this.ticking ??= (this.leaving ? this.renewAll() : this.tick()).finally(() => (this.ticking = null));
    }, every);
  }

  /** Heartbeat, then move towards the assignment computed from the live members. */
  private async tick(): Promise<void> {
    const redis = this.rt.redis;
    const now = Date.now();
    let members: string[];
    try {
      await redis
        .multi()
        .zadd(this.membersKey, now + this.opts.ttlMs, this.rt.replicaId)
        .zremrangebyscore(this.membersKey, '-inf', now)
        .exec();
      members = await redis.zrangebyscore(this.membersKey, now, '+inf');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'membership heartbeat failed; keeping the shards held');
      return;
    }
    const joined = [...members].sort().join(',');
    if (joined !== this.lastMembers) {
      this.log.info({ members: members.length }, 'shard membership changed');
      this.lastMembers = joined;
    }
    const want = assignShards(members, this.rt.topology.options.shards);
    const work: Promise<void>[] = [this.renewAll()];
    for (const shard of [...this.mine]) {
      if (want.get(shard) !== this.rt.replicaId) this.releaseInBackground(shard, `assigned to ${want.get(shard)}`);
    }
    for (const [shard, owner] of want) {
      if (owner === this.rt.replicaId && !this.mine.has(shard)) work.push(this.acquire(shard));
    }
    await Promise.all(work);
  }

  /**
   * Renews every lease held, also of shards being released: the lease must outlive the drain, or
   * the next owner could start before this one has acked what it holds.
   */
  private async renewAll(): Promise<void> {
    await Promise.all([...this.mine].map((s) => this.renew(s)));
  }

  /** A drain can take up to the grace period; ticks (and lease renewals) go on meanwhile. */
  private releaseInBackground(shard: number, why: string): void {
    if (this.busy.has(shard)) return;
    const p = this.release(shard, why).catch((err: Error) => this.log.error({ shard, err: err.message }, 'shard release failed'));
    this.releases.add(p);
    void p.finally(() => this.releases.delete(p));
  }

  private async renew(shard: number): Promise<void> {
    try {
      const ok = await this.rt.redis.eval(RENEW, 1, this.leaseKey(shard), this.rt.replicaId, String(this.opts.ttlMs));
      if (Number(ok) === 0 && !this.busy.has(shard)) await this.release(shard, 'lease lost');
    } catch (err) {
      this.log.warn({ shard, err: (err as Error).message }, 'lease renewal failed; keeping the shard');
    }
  }

  private async acquire(shard: number): Promise<void> {
    if (this.busy.has(shard) || !this.cb) return;
    this.busy.add(shard);
    try {
      const got = await this.rt.redis.set(this.leaseKey(shard), this.rt.replicaId, 'PX', this.opts.ttlMs, 'NX');
      if (got !== 'OK') return; // the previous owner is still finishing (or has not expired yet)
      try {
        await this.cb.acquire(shard);
      } catch (err) {
        await this.rt.redis.eval(RELEASE, 1, this.leaseKey(shard), this.rt.replicaId).catch(() => {});
        throw err;
      }
      this.mine.add(shard);
      this.log.info({ stage: this.stage, shard }, 'shard taken over');
    } catch (err) {
      this.log.warn({ shard, err: (err as Error).message }, 'could not take the shard; will retry');
    } finally {
      this.busy.delete(shard);
    }
  }

  private async release(shard: number, why: string): Promise<void> {
    if (this.busy.has(shard) || !this.cb) return;
    this.busy.add(shard);
    try {
      await this.cb.release(shard); // resolves after everything it handed out is acked
      this.mine.delete(shard);
      await this.rt.redis.eval(RELEASE, 1, this.leaseKey(shard), this.rt.replicaId).catch((err: Error) =>
        this.log.warn({ shard, err: err.message }, 'could not delete the lease; it expires by itself'),
      );
      this.log.info({ stage: this.stage, shard, why }, 'shard handed over');
    } finally {
      this.busy.delete(shard);
    }
  }

  /** Leaves the membership first (so the others start taking over), then hands every shard over. */
  stop(): Promise<void> {
    return (this.stopping ??= (async () => {
      this.leaving = true; // from now on ticks only renew leases
      await this.ticking;
      await this.rt.redis.zrem(this.membersKey, this.rt.replicaId).catch(() => {});
      await Promise.all([...this.releases]);
      await Promise.all([...this.mine].map((s) => this.release(s, 'replica stopping')));
      if (this.timer) clearInterval(this.timer);
    })());
  }
}

export function createAssigner(rt: Runtime, stage: Stage): ShardAssigner {
  return new RendezvousAssigner(rt, stage, { ttlMs: rt.cfg.leaseTtlMs });
}
