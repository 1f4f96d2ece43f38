/**
 * The users waiting behind a dead letter (DLQ_ORDERING_MODE=strict), seen from outside the stage
 * workers: the dlq-replayer ends a wait when it replays or purges the dead letter, and the CLI and
 * the workers' gauges count the waiting users. The workers' own side is in ordering.ts.
 */
import type { Redis } from 'ioredis';
import type { LuaFn } from '../platform/lua-scripts.js';
import type { Keyspace } from '../platform/redis.js';
import type { Stage } from '../amqp/topology/names.js';
import { EXPIRED, RESOLVE } from './hold-scripts.js';
import { holdKeys } from './hold-keys.js';

/** What became of a dead letter its user waits for: replayed (in flight again), kept (the replay did not go out), discarded (purged). */
export type Resolution = 'replayed' | 'kept' | 'discarded';

/** A dead letter of an ordered lane, as far as holds care. */
export interface HeldDeadLetter {
  stage: Stage;
  user: string;
  id: string;
}

export interface WaitingUsers {
  users: number;
  /** Since when the longest-waiting user waits (epoch ms); null without any. */
  oldestSince: number | null;
}

/** A hold's TTL: every copy is due back within the longest tier of its last write, plus the grace. */
export function holdTtlMs(retryTiersMs: number[], graceMs: number): number {
  return retryTiersMs[retryTiersMs.length - 1] + graceMs;
}

/** How many users of `stage` wait behind a dead letter, and since when the oldest. */
export async function waitingUsers(redis: Redis, keys: Keyspace, stage: Stage): Promise<WaitingUsers> {
  const key = holdKeys(keys, stage).waiting;
  const [users, oldest] = await Promise.all([redis.zcard(key), redis.zrange(key, 0, 0, 'WITHSCORES')]);
  return { users, oldestSince: oldest.length === 2 ? Number(oldest[1]) : null };
}

export class DeadLetterHolds {
  private readonly resolveScript: LuaFn<typeof RESOLVE>;
  private readonly expiredScript: LuaFn<typeof EXPIRED>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
    private readonly ttlMs: number,
  ) {
    this.resolveScript = RESOLVE.bind(redis);
    this.expiredScript = EXPIRED.bind(redis);
  }

  /**
   * Ends (or, `kept`, restores) the wait of the dead letter's user; a dead letter nobody waits for
   * is left alone. `stampMs` is the time a `replayed` put it in flight, and what `kept` undoes.
   * True when a wait changed.
   */
  async resolve(dl: HeldDeadLetter, action: Resolution, stampMs: number): Promise<boolean> {
    const k = holdKeys(this.keys, dl.stage);
    const keys = { list: k.list(dl.user), back: k.back(dl.user), waiting: k.waiting };
    const args = { id: dl.id, user: dl.user, nowMs: Date.now(), ttlMs: this.ttlMs, action, stampMs };
    const r = ((await this.resolveScript({ keys, args })) as unknown[]).map(String);
    if (r[0] === '0' && r[1] !== '') await this.expiredScript({ keys: { list: k.list(dl.user), shardSet: k.shard(Number(r[1])) }, args: { user: dl.user } });
    return r[0] !== '-1';
  }

  waiting(stage: Stage): Promise<WaitingUsers> {
    return waitingUsers(this.redis, this.keys, stage);
  }
}
