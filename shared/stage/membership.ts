/**
 * Shard ownership across the replicas of a stage (docs/ARCHITECTURE.md, "Ordering").
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
 * - A lease that runs out while its owner lives (the owner's event loop or Redis stalled for longer
 *   than LEASE_TTL_MS) lets the next owner subscribe while the old one still works. Single active
 *   consumer keeps the newcomer waiting as long as the old subscription exists, and the old owner,
 *   once it sees the lease gone, drains *without* cancelling first (a cancel would activate the
 *   newcomer at once, with the old owner's deliveries still unacked), then closes its channel: the
 *   newcomer starts at the first message the old owner did not finish. Leases are renewed on a loop
 *   of their own, which subscribing and draining never hold up.
 * - Single active consumer is also the broker-side safety net: even if two replicas believed they
 *   owned a shard, the broker would deliver to one of them only.
 * - Redis down: a replica keeps consuming the shards it holds (SAC still guarantees one consumer)
 *   and takes no new ones until Redis is back.
 */
import type { Runtime } from '../amqp/runtime.js';
import type { StageMetrics } from './metrics.js';
import type { Stage } from '../amqp/topology/names.js';
import type { Logger } from '../platform/logger.js';
import type { ShardAssigner, ShardCallbacks } from './assigner.js';
import { assignShards } from './rendezvous.js';
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { withDeadline } from '../platform/redis.js';
import { luaScript, type LuaFn } from '../platform/lua-scripts.js';

const RENEW = luaScript({ name: 'postmasterLeaseRenew', file: new URL('./lua/lease-renew.lua', import.meta.url), keys: ['lease'], args: ['owner', 'ttlMs'] });
const RELEASE = luaScript({ name: 'postmasterLeaseRelease', file: new URL('./lua/lease-release.lua', import.meta.url), keys: ['lease'], args: ['owner'] });

export class RendezvousAssigner implements ShardAssigner {
  private cb: ShardCallbacks | null = null;
  /** Shards this replica consumes. */
  private readonly mine = new Set<number>();
  /** Shards whose lease this replica set and has neither deleted nor seen run out (renewed by the lease loop). */
  private readonly leases = new Set<number>();
  /** Shards being taken or handed over right now. */
  private readonly busy = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private renewing: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private leaving = false;
  /** Takes and hand-overs running in the background. */
  private readonly tasks = new Set<Promise<void>>();
  private readonly log: Logger;
  private readonly membersKey: string;
  private lastMembers = '';
  /** When the next take-over may subscribe (take-over pacing, SHARD_TAKE_SPACING_MS). */
  private nextTakeAt = 0;
  /** Aborted on stop: take-overs waiting their turn give up at once. */
  private readonly quit = new AbortController();
  /** Longest wait for one renewal (a quarter of the TTL, whatever REDIS_COMMAND_TIMEOUT_MS says). */
  readonly renewDeadlineMs: number;
  private readonly renewLease: LuaFn<typeof RENEW>;
  private readonly releaseLease: LuaFn<typeof RELEASE>;

  constructor(
    private readonly rt: Runtime<StageMetrics>,
    private readonly stage: Stage,
    private readonly opts: { ttlMs: number; tickMs?: number; takeSpacingMs?: number } = { ttlMs: rt.cfg.leaseTtlMs },
  ) {
    this.log = rt.log.child({ component: `${stage}-shards` });
    this.membersKey = rt.keys('members', stage);
    this.renewDeadlineMs = Math.max(50, Math.floor(opts.ttlMs / 4));
    this.renewLease = RENEW.bind(rt.redis);
    this.releaseLease = RELEASE.bind(rt.redis);
    // Each take-over waiting its turn listens on `quit` until its wait ends: at most one per shard
    // at once (16 by default, over Node's warning threshold of 10 listeners).
    setMaxListeners(rt.topology.options.shards + 1, this.quit.signal);
  }

  private leaseKey(shard: number): string {
    return this.rt.keys('lease', this.stage, shard);
  }

  owned(): number[] {
    return [...this.mine].sort((a, b) => a - b);
  }

  /**
   * Two loops on one timer that never wait for each other: lease renewal, and the membership tick.
   * Taking a shard (subscribing) and handing one over (draining) run in the background, so a slow
   * subscription or drain never delays the renewal of the other leases. Resolves once the shards
   * of the first tick are taken.
   */
  async start(cb: ShardCallbacks): Promise<void> {
    this.cb = cb;
    await this.tick();
    if (this.leaving) return; // stopped while starting
    // The loops run while the first take-overs do: paced (takeTurn), those can outlast the TTL.
    const every = this.opts.tickMs ?? Math.max(100, Math.min(500, Math.floor(this.opts.ttlMs / 3)));
    this.timer = setInterval(() => {
      this.renewing ??= this.renewAll().finally(() => (this.renewing = null));
      if (!this.leaving) this.ticking ??= this.tick().finally(() => (this.ticking = null));
    }, every);
    await this.settle();
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
    for (const shard of [...this.mine]) {
      if (want.get(shard) !== this.rt.replicaId) this.inBackground(shard, () => this.release(shard, `assigned to ${want.get(shard)}`));
    }
    for (const [shard, owner] of want) {
      if (owner === this.rt.replicaId && !this.mine.has(shard)) this.inBackground(shard, () => this.acquire(shard));
    }
  }

  /**
   * Renews every lease held, also of shards being taken or handed over: the lease must outlive the
   * drain, or the next owner could start before this one has acked what it holds.
   */
  private async renewAll(): Promise<void> {
    await Promise.all([...this.leases].map((s) => this.renew(s)));
  }

  private inBackground(shard: number, task: () => Promise<void>): void {
    if (this.busy.has(shard)) return;
    const p = task().catch((err: Error) => this.log.error({ shard, err: err.message }, 'shard take-over or hand-over failed'));
    this.tasks.add(p);
    void p.finally(() => this.tasks.delete(p));
  }

  /** Waits for every take-over and hand-over running, including those started meanwhile. */
  private async settle(): Promise<void> {
    while (this.tasks.size > 0) await Promise.all([...this.tasks]);
  }

  /**
   * Extends the shard's lease if it is still this replica's: true if it was, false if not. Rejects
   * when Redis does or does not answer within `renewDeadlineMs` ("cannot tell"): a round of renewals
   * then ends in time for the next one to run well before the lease can run out.
   */
  private async extend(shard: number): Promise<boolean> {
    const reply = this.renewLease({ keys: { lease: this.leaseKey(shard) }, args: { owner: this.rt.replicaId, ttlMs: this.opts.ttlMs } });
    return Number(await withDeadline(reply, this.renewDeadlineMs, 'lease renewal')) !== 0;
  }

  /** Deletes the shard's lease if it is still this replica's (compare-and-delete). */
  private async deleteLease(shard: number): Promise<void> {
    await this.releaseLease({ keys: { lease: this.leaseKey(shard) }, args: { owner: this.rt.replicaId } });
  }

  private async renew(shard: number): Promise<void> {
    let ok: boolean;
    try {
      ok = await this.extend(shard);
    } catch (err) {
      this.log.warn({ shard, err: (err as Error).message }, 'lease renewal failed; keeping the shard');
      return;
    }
    if (ok || !this.leases.delete(shard)) return;
    this.rt.metrics.shardLeasesLost.inc({ stage: this.stage });
    if (this.busy.has(shard)) {
      // A take-over notices by itself when it is done; a hand-over that cancelled its subscription
      // already cannot be fenced any more (see release()).
      this.log.error({ shard }, 'shard lease ran out while the shard was being taken or handed over');
      return;
    }
    this.log.error({ shard, ttlMs: this.opts.ttlMs }, 'shard lease ran out while held (not renewed in time); handing the shard over');
    if (this.mine.has(shard)) this.inBackground(shard, () => this.release(shard, 'lease lost', { leaseLost: true }));
  }

  private async acquire(shard: number): Promise<void> {
    if (this.busy.has(shard) || !this.cb) return;
    this.busy.add(shard);
    let lostMeanwhile = false;
    try {
      const got = await this.rt.redis.set(this.leaseKey(shard), this.rt.replicaId, 'PX', this.opts.ttlMs, 'NX');
      if (got !== 'OK') return; // the previous owner is still finishing (or has not expired yet)
      this.leases.add(shard);
      await this.takeTurn();
      if (this.leaving || !this.leases.has(shard)) {
        // Stopping, or the lease ran out while waiting (renew() noticed): no subscription.
        if (this.leases.delete(shard)) await this.deleteLease(shard).catch(() => {});
        return;
      }
      try {
        await this.cb.acquire(shard);
      } catch (err) {
        this.leases.delete(shard);
        await this.deleteLease(shard).catch(() => {});
        throw err;
      }
      this.mine.add(shard);
      lostMeanwhile = !this.leases.has(shard);
      this.log.info({ stage: this.stage, shard }, 'shard taken over');
    } catch (err) {
      this.log.warn({ shard, err: (err as Error).message }, 'could not take the shard; will retry');
    } finally {
      this.busy.delete(shard);
    }
    if (lostMeanwhile) await this.release(shard, 'lease lost while subscribing', { leaseLost: true });
  }

  /**
   * Take-over pacing: subscriptions start at least `takeSpacingMs` apart. A replica starting onto
   * full shards would otherwise get a full prefetch of every shard at once (16 × 64 deliveries) on
   * code not yet optimised, and its event loop would stall for hundreds of ms — urgent deliveries
   * included, as they share it. The lease is held (and
   * renewed) while a take-over waits its turn; a single take-over after a quiet spell goes at once.
   */
  private async takeTurn(): Promise<void> {
    const spacing = this.opts.takeSpacingMs ?? 0;
    if (spacing <= 0) return;
    const now = Date.now();
    const at = Math.max(now, this.nextTakeAt);
    this.nextTakeAt = at + spacing;
    if (at > now) await sleep(at - now, undefined, { signal: this.quit.signal }).catch(() => {});
  }

  /**
   * Hands a shard over: stops consuming it once everything it handed out is acked, then deletes the
   * lease. While the lease is ours no other replica can have subscribed, and the subscription is
   * cancelled at once; when it is not (it ran out, or Redis cannot tell), another replica may be
   * subscribed and waiting, and single active consumer would activate it on the cancel while this
   * one still works on earlier messages of its users — so the subscription is kept until the drain
   * is over (ShardCallbacks.release, leaseLost).
   */
  private async release(shard: number, why: string, { leaseLost = false } = {}): Promise<void> {
    if (this.busy.has(shard) || !this.cb) return;
    this.busy.add(shard);
    try {
      // Redis unreachable counts as lost: nothing then says no one else holds it.
      const lost = leaseLost || !this.leases.has(shard) || !(await this.extend(shard).catch(() => false));
      await this.cb.release(shard, { leaseLost: lost }); // resolves after everything it handed out is acked
      this.mine.delete(shard);
      this.leases.delete(shard);
      await this.deleteLease(shard).catch((err: Error) => this.log.warn({ shard, err: err.message }, 'could not delete the lease; it expires by itself'));
      this.log.info({ stage: this.stage, shard, why, leaseLost: lost }, 'shard handed over');
    } finally {
      this.busy.delete(shard);
    }
  }

  /** Leaves the membership first (so the others start taking over), then hands every shard over. */
  stop(): Promise<void> {
    return (this.stopping ??= (async () => {
      this.leaving = true; // from now on only leases are renewed
      this.quit.abort();
      await this.ticking;
      await this.rt.redis.zrem(this.membersKey, this.rt.replicaId).catch(() => {});
      await this.settle();
      for (const s of [...this.mine]) this.inBackground(s, () => this.release(s, 'replica stopping'));
      await this.settle();
      if (this.timer) clearInterval(this.timer);
    })());
  }
}

export function createAssigner(rt: Runtime<StageMetrics>, stage: Stage): ShardAssigner {
  return new RendezvousAssigner(rt, stage, { ttlMs: rt.cfg.leaseTtlMs, takeSpacingMs: rt.cfg.shardTakeSpacingMs });
}
