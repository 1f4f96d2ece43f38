/**
 * The messaging limit (Meta's tier): how many distinct users a business portfolio may reach with
 * business-initiated messages — templates to users whose customer-service window is closed — per
 * rolling 24 hours. Since October 2025 Meta counts it per portfolio, shared by its numbers.
 *
 * Postmaster keeps, per portfolio, a sorted set `mlimit:<portfolio>:users` of the users reached
 * (score: when their conversation began) and, once Meta's phone_number_quality_update webhook has
 * told a new limit, `mlimit:<portfolio>:limit`, which overrides WHATSAPP_MESSAGING_LIMIT. A send
 * to a user already in the set counts nothing; a new user is admitted while the set holds fewer
 * users than the limit. One script call per business-initiated send, none for any other.
 */
import type { Redis } from 'ioredis';
import { WINDOW_MS } from './window.js';
import type { MessagingLimit } from '../platform/numbers.js';
import { luaScript, type LuaFn } from '../platform/lua-scripts.js';
import type { Keyspace } from '../platform/redis.js';

export const usersKey = (keys: Keyspace, portfolio: string) => keys('mlimit', portfolio, 'users');
export const limitKey = (keys: Keyspace, portfolio: string) => keys('mlimit', portfolio, 'limit');

const ADMIT = luaScript({
  name: 'postmasterMessagingLimitAdmit',
  file: new URL('./lua/messaging-limit-admit.lua', import.meta.url),
  keys: ['users', 'limit'],
  args: ['nowMs', 'windowMs', 'limit', 'user'],
});

export type Admission = { admitted: true } | { admitted: false; waitMs: number };

/** The messaging-limit book of one fleet: admissions (sender) and limit updates (webhooks). */
export class MessagingLimits {
  private readonly admit: LuaFn<typeof ADMIT>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
  ) {
    this.admit = ADMIT.bind(redis);
  }

  /**
   * A business-initiated message to `user` from `portfolio`, whose configured limit is `limit`:
   * admitted (the user now counts for 24 hours, or already did), or how long until one would be.
   */
  async admitUser(portfolio: string, limit: MessagingLimit, user: string, now = Date.now()): Promise<Admission> {
    const [ok, n] = (await this.admit({
      keys: { users: usersKey(this.keys, portfolio), limit: limitKey(this.keys, portfolio) },
      args: { nowMs: now, windowMs: WINDOW_MS, limit: limit === null ? 'unlimited' : limit, user },
    })) as [number, number];
    return ok === 1 ? { admitted: true } : { admitted: false, waitMs: n };
  }

  /** Meta told a new limit for `portfolio` (null: unlimited); it overrides the configured one. */
  async setLimit(portfolio: string, limit: MessagingLimit): Promise<void> {
    await this.redis.set(limitKey(this.keys, portfolio), limit === null ? 'unlimited' : String(limit));
  }

  /** The limit in force: Meta's latest, else `configured`; and the users reached in the last 24 h. */
  async usage(portfolio: string, configured: MessagingLimit, now = Date.now()): Promise<{ limit: MessagingLimit; users: number }> {
    const [[, stored], [, users]] = (await this.redis
      .pipeline()
      .get(limitKey(this.keys, portfolio))
      .zcount(usersKey(this.keys, portfolio), now - WINDOW_MS, '+inf')
      .exec()) as [[unknown, string | null], [unknown, number]];
    const limit = stored === null ? configured : stored === 'unlimited' ? null : Number(stored);
    return { limit, users };
  }
}
