/**
 * Strict per-user order across retries (DESIGN §4, "order survives retries").
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
 * Parked messages wait in the longest tier that ends before the head is due back (the head's due
 * time is stored beside the list), then in shorter ones, so a 10-minute hold costs a handful of
 * round trips per parked message rather than one per second.
 */
import type { ConsumeMessage } from 'amqplib';
import type { Envelope } from '../envelope.js';
import { H } from '../envelope.js';
import { ThrottledError } from '../failures/errors.js';
import type { FailureRouter } from '../failures/router.js';
import { tierAtMost } from '../failures/fate.js';
import type { Runtime } from '../runtime.js';
import type { Lane, Stage } from '../topology/names.js';

// KEYS: list, shardSet, due; ARGV: id, user. Removes `id` — the head when it was sent or failed
// for good, or a parked message the worker dead-lettered — and clears the hold when empty.
const DONE = `
redis.call('LREM', KEYS[1], 0, ARGV[1])
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[3])
  redis.call('SREM', KEYS[2], ARGV[2])
  return 0
end
return 1`;

// KEYS: list, shardSet, due; ARGV: id, user, dueAtMs (0 = keep). Appends `id` unless present.
const ENQUEUE = `
if not redis.call('LPOS', KEYS[1], ARGV[1]) then redis.call('RPUSH', KEYS[1], ARGV[1]) end
redis.call('SADD', KEYS[2], ARGV[2])
if ARGV[3] ~= '0' then redis.call('SET', KEYS[3], ARGV[3]) end
local head = redis.call('LINDEX', KEYS[1], 0)
local due = redis.call('GET', KEYS[3])
return {head, due or '0'}`;

export class OrderingGuard {
  private readonly held = new Map<number, Set<string>>();
  private readonly loading = new Map<number, Promise<void>>();
  private readonly loadTokens = new Map<number, object>();

  constructor(
    private readonly rt: Runtime,
    private readonly stage: Stage,
  ) {}

  private listKey(user: string): string {
    return this.rt.keys('hold', this.stage, user);
  }
  private dueKey(user: string): string {
    return this.rt.keys('hold', this.stage, user, 'due');
  }
  private shardKey(shard: number): string {
    return this.rt.keys('holds', this.stage, shard);
  }

  heldCount(): number {
    let n = 0;
    for (const s of this.held.values()) n += s.size;
    return n;
  }

  private gauge(): void {
    this.rt.metrics.heldUsers.set({ stage: this.stage }, this.heldCount());
  }

  /** Loads the shard's held users once (the first delivery of the shard waits for it). */
  async ensureShard(shard: number): Promise<void> {
    if (this.held.has(shard)) return;
    let p = this.loading.get(shard);
    if (!p) {
      const token = {};
      this.loadTokens.set(shard, token);
      p = (async () => {
        const users = await this.rt.redis.smembers(this.shardKey(shard));
        if (this.loadTokens.get(shard) !== token) return; // the shard was released meanwhile
        this.held.set(shard, new Set(users));
        this.gauge();
      })().finally(() => {
        if (this.loadTokens.get(shard) === token) this.loading.delete(shard);
      });
      this.loading.set(shard, p);
    }
    await p;
  }

  unloadShard(shard: number): void {
    this.held.delete(shard);
    this.loading.delete(shard);
    this.loadTokens.delete(shard);
    this.gauge();
  }

  isHeld(user: string, shard: number): boolean {
    return this.held.get(shard)?.has(user) ?? false;
  }

  /** True when an earlier message of this user is still waiting in a retry tier. */
  async mustWait(env: Envelope, _msg: ConsumeMessage, shard: number): Promise<boolean> {
    if (!this.isHeld(env.user, shard)) return false;
    const head = await this.rt.redis.lindex(this.listKey(env.user), 0);
    if (head === null) {
      this.held.get(shard)?.delete(env.user);
      this.gauge();
      return false;
    }
    return head !== env.id;
  }

  /** The message failed and goes to a retry tier: later messages of the user wait behind it. */
  async hold(env: Envelope, shard: number, tierMs?: number): Promise<void> {
    const due = tierMs ? Date.now() + tierMs : 0;
    await this.rt.redis.eval(ENQUEUE, 3, this.listKey(env.user), this.shardKey(shard), this.dueKey(env.user), env.id, env.user, String(due));
    let set = this.held.get(shard);
    if (!set) this.held.set(shard, (set = new Set()));
    set.add(env.user);
    this.gauge();
  }

  /** The message was sent or dead-lettered: the user's next message may go. */
  async done(env: Envelope, shard: number): Promise<void> {
    if (!this.isHeld(env.user, shard)) return;
    const left = await this.rt.redis.eval(DONE, 3, this.listKey(env.user), this.shardKey(shard), this.dueKey(env.user), env.id, env.user);
    if (Number(left) === 0) {
      this.held.get(shard)?.delete(env.user);
      this.gauge();
    }
  }

  /**
   * Puts a message that must wait back into a retry tier without counting an attempt: the longest
   * tier that ends before the head is due back, so it returns about when its turn can come.
   */
  async park(env: Envelope, msg: ConsumeMessage, lane: Lane, router: FailureRouter, shard: number): Promise<void> {
    const [, dueRaw] = (await this.rt.redis.eval(
      ENQUEUE, 3, this.listKey(env.user), this.shardKey(shard), this.dueKey(env.user), env.id, env.user, '0',
    )) as [string, string];
    const tiers = this.rt.topology.options.retryTiersMs;
    const i = tierAtMost(tiers, Math.max(0, Number(dueRaw) - Date.now()));
    const attempt = Number(msg.properties.headers?.[H.attempt] ?? env.attempt ?? 0);
    const err = new ThrottledError('waiting behind an earlier message of the same user in retry', { code: 'ordered-wait' });
    await router.apply({ action: 'retry', tierIndex: i, tierMs: tiers[i], attempt }, { msg, lane, envelope: env }, err, { park: true });
  }
}
