/**
 * Strict per-user order across retries (docs/ARCHITECTURE.md, "Ordering": "Strict order across retries").
 *
 * When a user's message goes to a retry tier, the user is *held*: a Redis list
 * `hold:<stage>:<user>` names, in order, the message being retried (the head) and every later
 * message of that user that arrived meanwhile (parked). A parked message is not kept in Redis —
 * only its id is; the message itself waits in a retry tier queue (durable, quorum) and comes back
 * to the same shard, where it is processed only when its id is the head of the list, and parked
 * again otherwise. When the head is sent or dead-lettered it is popped and the next id becomes the
 * head. Other users on the shard never touch any of this.
 *
 * The common path costs nothing: each shard's owner keeps the set of held users of its shards in
 * memory, so a message of a user who is not held is processed without a Redis round trip. The set
 * is loaded from `holds:<stage>:<shard>` at the shard's *first delivery*, not when the lease is
 * taken: single active consumer hands the queue over only once the previous owner's consumer is
 * gone, so holds that owner wrote while finishing its last deliveries (even past an expired lease)
 * are in the set.
 *
 * Parked messages wait in the longest tier that ends before the head is due back, then in shorter
 * ones, so a 10-minute hold costs a handful of round trips per parked message rather than one per
 * second.
 *
 * **Holds heal themselves** (no user is stuck forever): every listed id has the time its copy is due
 * back (hold-scripts.ts). A held user's deliveries come in queue order, so a head that was due back
 * more than HOLD_GRACE_MS before a later delivery of the user entered the shard would have been
 * delivered first: its copy is lost (a purged or deleted retry queue) and it is dropped. A head past
 * its due time whose status record says it was sent or dead-lettered (since it took the head), or
 * that has no record at all, is dropped too. A hold no copy has touched for the longest tier + the
 * grace expires (TTL). Dropping only ends the wait: a dropped head that shows up after all is
 * processed then (out of order), never discarded.
 *
 * **Dead letters** (DLQ_ORDERING_MODE): by default (`release`) a dead-lettered head is popped like a
 * sent one, so a replay of it arrives after the user's later messages. With `strict` the
 * dead-lettered id stays listed, due back never: no heal rule drops it, the hold has no TTL while it
 * is the head, and the user's later messages park in the longest tier (one round trip per parked
 * message per longest tier, however long the wait). The dlq-replayer ends the wait
 * (dead-letter-holds.ts): a replay puts the id back in flight, so the replayed copy is processed as
 * the head; a purge removes it. A permanent failure of a user who is not held opens a hold.
 */
import type { ConsumeMessage } from 'amqplib';
import type { Envelope } from '../domain/envelope.js';
import { H } from '../domain/envelope.js';
import { ThrottledError } from '../failures/errors.js';
import type { FailureRouter } from '../failures/router.js';
import { tierAtMost } from '../failures/fate.js';
import type { Runtime } from '../amqp/runtime.js';
import type { StageMetrics } from './metrics.js';
import { StatusStore } from '../domain/status.js';
import type { Lane, Stage } from '../amqp/topology/names.js';
import type { LuaFn } from '../platform/lua-scripts.js';
import { CHECK, DEAD_BACK, DONE, ENQUEUE, EXPIRED, MARK_DEAD, SINCE } from './hold-scripts.js';
import { holdKeys, type HoldKeys } from './hold-keys.js';
import { HeldUsers, type HeldUser } from './held-users.js';
import { holdTtlMs, waitingUsers } from './dead-letter-holds.js';

export type HealReason = 'lost' | 'sent' | 'dead-lettered' | 'unknown' | 'expired';

/** A delivery that must wait, and when the head it waits for is due back. */
export interface HoldWait {
  headBackMs: number;
}

/** Statuses proving the provider took the message: whichever stage holds it is done with it. */
const SENT = new Set(['sent', 'delivered', 'read', 'failed']);
/** Status lookups of heads per check: each one drops a head, so this only bounds a pathological list. */
const MAX_HEAD_LOOKUPS = 3;
/** How often the oldest hold's age is measured and expired holds are forgotten. */
const TICK_MS = 5000;
/** Holds looked up per tick for expiry (the oldest first). */
const EXPIRY_CHECKS_PER_TICK = 100;
/** Dead-letter waits of this replica looked up per tick (one ZMSCORE). */
const DEAD_CHECKS_PER_TICK = 1000;

export class OrderingGuard {
  private readonly held: HeldUsers;
  private readonly loading = new Map<number, Promise<void>>();
  private readonly loadTokens = new Map<number, object>();
  private readonly status: StatusStore;
  private readonly graceMs: number;
  private readonly ttlMs: number;
  private readonly k: HoldKeys;
  /** DLQ_ORDERING_MODE=strict: a dead letter keeps holding its user until it is replayed or purged. */
  readonly holdsDeadLetters: boolean;
  private readonly timer: NodeJS.Timeout;
  private deadCursor = 0;
  /** The hold scripts, sent once per connection and run by their SHA after that. */
  private readonly scripts: {
    check: LuaFn<typeof CHECK>;
    enqueue: LuaFn<typeof ENQUEUE>;
    done: LuaFn<typeof DONE>;
    expired: LuaFn<typeof EXPIRED>;
    dead: LuaFn<typeof MARK_DEAD>;
  };

  constructor(
    private readonly rt: Runtime<StageMetrics>,
    private readonly stage: Stage,
  ) {
    this.status = new StatusStore(rt);
    this.scripts = {
      check: CHECK.bind(rt.redis),
      enqueue: ENQUEUE.bind(rt.redis),
      done: DONE.bind(rt.redis),
      expired: EXPIRED.bind(rt.redis),
      dead: MARK_DEAD.bind(rt.redis),
    };
    this.k = holdKeys(rt.keys, stage);
    this.held = new HeldUsers(() => this.gauge());
    this.graceMs = rt.cfg.holdGraceMs;
    this.holdsDeadLetters = rt.cfg.dlqOrderingMode === 'strict';
    this.ttlMs = holdTtlMs(rt.topology.options.retryTiersMs, this.graceMs);
    this.timer = setInterval(() => void this.tick().catch((err: Error) => this.rt.log.warn({ err: err.message, stage }, 'hold sweep failed')), TICK_MS);
    this.timer.unref();
  }

  private keys(user: string, shard: number): { list: string; back: string; shardSet: string; waiting: string } {
    return { list: this.k.list(user), back: this.k.back(user), shardSet: this.k.shard(shard), waiting: this.k.waiting };
  }

  /** Users of this replica's shards held by a message in retry (not by a dead letter). */
  heldCount(): number {
    return this.held.retrying();
  }

  /** Age (ms) of the oldest hold by a message in retry of this replica's shards, from when its head took the head; 0 without. */
  oldestHoldAgeMs(now = Date.now()): number {
    return this.held.oldestRetryingAgeMs(now);
  }

  private gauge(): void {
    this.rt.metrics.heldUsers.set({ stage: this.stage }, this.heldCount());
  }

  private setHeld(shard: number, user: string, since: number | string, dead: boolean): void {
    this.held.set(shard, user, { since: Number(since), dead });
  }

  /** `ids`: the messages the user no longer waits for; none for a hold that expired as a whole. */
  private healed(user: string, reason: HealReason, ids: string[]): void {
    if (ids.length === 0 && reason !== 'expired') return;
    this.rt.metrics.holdsHealed.inc({ stage: this.stage, reason }, Math.max(1, ids.length));
    this.rt.log.warn({ stage: this.stage, user, messageIds: ids, reason }, 'strict-order hold healed: its user no longer waits for these messages');
  }

  /** Loads the shard's held users once (the first delivery of the shard waits for it). */
  async ensureShard(shard: number): Promise<void> {
    if (this.held.hasShard(shard)) return;
    let p = this.loading.get(shard);
    if (!p) {
      const token = {};
      this.loadTokens.set(shard, token);
      p = this.load(shard, token).finally(() => {
        if (this.loadTokens.get(shard) === token) this.loading.delete(shard);
      });
      this.loading.set(shard, p);
    }
    await p;
  }

  private async load(shard: number, token: object): Promise<void> {
    const users = await this.rt.redis.smembers(this.k.shard(shard));
    const pipe = this.rt.redis.pipeline();
    for (const u of users) pipe.hget(this.k.back(u), SINCE).zscore(this.k.waiting, u);
    const got = users.length ? ((await pipe.exec()) ?? []) : [];
    if (this.loadTokens.get(shard) !== token) return; // the shard was released meanwhile
    const now = Date.now();
    // A user without a recorded start (an expired hold, or one from before there was one) counts
    // from now; the sweep forgets it once its hold is found gone.
    const held = users.map((u, i): [string, HeldUser] => [u, { since: Number(got[2 * i]?.[1]) || now, dead: got[2 * i + 1]?.[1] != null }]);
    this.held.loadShard(shard, new Map(held));
  }

  unloadShard(shard: number): void {
    this.held.unloadShard(shard);
    this.loading.delete(shard);
    this.loadTokens.delete(shard);
  }

  isHeld(user: string, shard: number): boolean {
    return this.held.has(shard, user);
  }

  /**
   * Null when the delivery may go now; otherwise it must wait behind an earlier message of its user
   * that is in a retry tier (or, DLQ_ORDERING_MODE=strict, in the DLQ). Heals the hold on the way
   * (see the file's comment).
   */
  async mustWait(env: Envelope, msg: ConsumeMessage, shard: number): Promise<HoldWait | null> {
    if (!this.isHeld(env.user, shard)) return null;
    const estimate = String(enteredAt(msg));
    for (let lookups = 0; ; lookups++) {
      const args = { id: env.id, user: env.user, enteredMs: estimate, graceMs: this.graceMs, nowMs: Date.now(), ttlMs: this.ttlMs };
      const r = ((await this.scripts.check({ keys: this.keys(env.user, shard), args })) as unknown[]).map(String);
      if (r[0] === '0') {
        // Nothing dropped now: the hold was already gone — it expired (or was deleted by hand).
        this.healed(env.user, r.length > 1 ? 'lost' : 'expired', r.slice(1));
        this.held.forget(shard, env.user);
        return null;
      }
      const [, head, headBack, since, entered, ...lost] = r;
      this.healed(env.user, 'lost', lost);
      const dead = headBack === DEAD_BACK;
      this.setHeld(shard, env.user, since, dead);
      if (head === env.id) return null;
      if (dead && this.holdsDeadLetters) return { headBackMs: Number(headBack) };
      // The head should have been back before this delivery entered the shard: did it finish elsewhere?
      const late = Number(entered) > Number(headBack) && lookups < MAX_HEAD_LOOKUPS;
      const reason = dead ? 'dead-lettered' : late ? await this.finished(head, Number(since)) : null;
      if (!reason) return { headBackMs: Number(headBack) };
      if (reason === 'dead-lettered' && this.holdsDeadLetters) {
        // Dead-lettered by a worker that died before it could say so in the hold.
        await this.markDead(head, env.user, shard);
        continue;
      }
      this.healed(env.user, reason, [head]);
      await this.remove(head, env.user, shard);
      if (!this.isHeld(env.user, shard)) return null;
    }
  }

  /** Why a head no longer holds its user, judged by its status record; null while it may still come. */
  private async finished(id: string, since: number): Promise<HealReason | null> {
    const rec = await this.status.get(id);
    if (!rec) return 'unknown';
    if (rec.history.some((h) => SENT.has(h.status))) return 'sent';
    // Dead-lettered while it was the head; an older record is the DLQ visit a replay brought it back from.
    const dead = rec.history.filter((h) => h.status === 'dead-lettered').map((h) => Date.parse(h.at));
    if (rec.status === 'dead-lettered' && dead.some((at) => at >= since)) return 'dead-lettered';
    return null;
  }

  /** The message failed and goes to a retry tier: later messages of the user wait behind it. */
  async hold(env: Envelope, shard: number, tierMs: number): Promise<void> {
    await this.enqueue(env, shard, tierMs);
  }

  private async enqueue(env: Envelope, shard: number, backInMs: number): Promise<void> {
    const now = Date.now();
    const args = { id: env.id, user: env.user, backMs: now + backInMs, nowMs: now, ttlMs: this.ttlMs };
    const r = (await this.scripts.enqueue({ keys: this.keys(env.user, shard), args })) as unknown[];
    this.setHeld(shard, env.user, String(r[0]), Number(r[1]) === 1);
  }

  /**
   * DLQ_ORDERING_MODE=strict: the message is about to be dead-lettered, and holds its user until it
   * is replayed or purged (said before it leaves, so that no crash leaves its user free).
   */
  async deadLettered(env: Envelope, shard: number): Promise<void> {
    await this.markDead(env.id, env.user, shard);
  }

  private async markDead(id: string, user: string, shard: number): Promise<void> {
    const args = { id, user, nowMs: Date.now(), ttlMs: this.ttlMs, shard };
    const r = (await this.scripts.dead({ keys: this.keys(user, shard), args })) as unknown[];
    this.setHeld(shard, user, String(r[0]), Number(r[1]) === 1);
  }

  /** The message was sent or dead-lettered: the user's next message may go. */
  async done(env: Envelope, shard: number): Promise<void> {
    if (this.isHeld(env.user, shard)) await this.remove(env.id, env.user, shard);
  }

  private async remove(id: string, user: string, shard: number): Promise<void> {
    const args = { id, user, nowMs: Date.now(), ttlMs: this.ttlMs };
    const r = (await this.scripts.done({ keys: this.keys(user, shard), args })) as Array<string | number>;
    if (Number(r[0]) === 0) this.held.forget(shard, user);
    else this.setHeld(shard, user, String(r[1]), Number(r[2]) === 1);
  }

  /**
   * Puts a message that must wait back into a retry tier without counting an attempt: the longest
   * tier that ends before the head is due back, so it returns about when its turn can come.
   */
  async park(env: Envelope, msg: ConsumeMessage, lane: Lane, router: FailureRouter, shard: number, wait: HoldWait): Promise<void> {
    const tiers = this.rt.topology.options.retryTiersMs;
    const i = tierAtMost(tiers, Math.max(0, wait.headBackMs - Date.now()));
    await this.enqueue(env, shard, tiers[i]);
    const attempt = Number(msg.properties.headers?.[H.attempt] ?? env.attempt ?? 0);
    const err = new ThrottledError('waiting behind an earlier message of the same user in retry', { code: 'ordered-wait' });
    await router.apply({ action: 'retry', tierIndex: i, tierMs: tiers[i], attempt }, { msg, lane, envelope: env }, err, { park: true });
  }

  /**
   * Measures the holds, forgets held users whose hold has expired (no message of theirs came to find
   * out), and notices dead-letter waits the dlq-replayer ended.
   */
  private async tick(): Promise<void> {
    const now = Date.now();
    this.rt.metrics.oldestHoldAge.set({ stage: this.stage }, this.oldestHoldAgeMs(now) / 1000);
    const w = await waitingUsers(this.rt.redis, this.rt.keys, this.stage);
    this.rt.metrics.dlqWaitingUsers.set({ stage: this.stage }, w.users);
    this.rt.metrics.dlqOldestWait.set({ stage: this.stage }, w.oldestSince === null ? 0 : Math.max(0, now - w.oldestSince) / 1000);
    for (const { shard, user } of this.held.stale(now, this.ttlMs).slice(0, EXPIRY_CHECKS_PER_TICK)) {
      if (Number(await this.expired(user, shard)) === 0) continue;
      this.healed(user, 'expired', []);
      this.held.forget(shard, user);
    }
    await this.sweepDead(now);
  }

  private expired(user: string, shard: number): Promise<unknown> {
    return this.scripts.expired({ keys: { list: this.k.list(user), shardSet: this.k.shard(shard) }, args: { user } });
  }

  /** Dead-letter waits no longer in the stage's waiting set were ended by a replay or a purge. */
  private async sweepDead(now: number): Promise<void> {
    const all = this.held.dead();
    if (all.length === 0) return;
    // A window that moves on each tick, so that every wait is looked at however many there are.
    this.deadCursor = this.deadCursor >= all.length ? 0 : this.deadCursor;
    const dead = all.slice(this.deadCursor, this.deadCursor + DEAD_CHECKS_PER_TICK);
    this.deadCursor += dead.length;
    const scores = await this.rt.redis.zmscore(this.k.waiting, ...dead.map((d) => d.user));
    for (const [i, { shard, user }] of dead.entries()) {
      if (scores[i] !== null) continue;
      if (Number(await this.expired(user, shard)) === 1) this.held.forget(shard, user);
      else this.setHeld(shard, user, now, false);
    }
  }

  /** Stops the sweep (the worker is closing). */
  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * When a delivery that is not listed in its user's hold entered its queue, at the latest: its
 * publish time (AMQP timestamp, whole seconds, rounded down), else the ingress's accept time.
 * Earlier is the safe side: it can only keep a head waited for longer.
 */
function enteredAt(msg: ConsumeMessage): number {
  const ts = msg.properties.timestamp as unknown;
  if (typeof ts === 'number' && ts > 0) return Math.min(ts * 1000, Date.now());
  const accepted = Number(msg.properties.headers?.[H.acceptedAt]);
  return accepted > 0 ? Math.min(accepted, Date.now()) : Date.now();
}
