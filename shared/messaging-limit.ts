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
import type { MessagingLimit } from './numbers.js';
import { defineScript, type Keyspace, type RedisScript } from './redis.js';

export const usersKey = (keys: Keyspace, portfolio: string) => keys('mlimit', portfolio, 'users');
export const limitKey = (keys: Keyspace, portfolio: string) => keys('mlimit', portfolio, 'limit');

// KEYS: users, limit override; ARGV: now ms, window ms, configured limit ('unlimited' or n), user.
// Returns {1, count} when admitted (count: users in the window now), {0, ms until a slot frees}.
const ADMIT = `
local now = tonumber(ARGV[1])
local win = tonumber(ARGV[2])
local limit = redis.call('GET', KEYS[2]) or ARGV[3]
if limit == 'unlimited' then return {1, -1} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return {1, redis.call('ZCARD', KEYS[1])} end
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(limit) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local wait = 1
  if oldest[2] then wait = math.max(1, tonumber(oldest[2]) + win - now) end
  return {0, wait}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], win)
return {1, n + 1}`;

export type Admission = { admitted: true } | { admitted: false; waitMs: number };

/** The messaging-limit book of one fleet: admissions (sender) and limit updates (webhooks). */
export class MessagingLimits {
  private readonly admit: RedisScript;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
  ) {
    this.admit = defineScript(redis, 'postmasterMessagingLimitAdmit', ADMIT);
  }

  /**
   * A business-initiated message to `user` from `portfolio`, whose configured limit is `limit`:
   * admitted (the user now counts for 24 hours, or already did), or how long until one would be.
   */
  async admitUser(portfolio: string, limit: MessagingLimit, user: string, now = Date.now()): Promise<Admission> {
    const [ok, n] = (await this.admit(2, usersKey(this.keys, portfolio), limitKey(this.keys, portfolio), String(now), String(WINDOW_MS), limit === null ? 'unlimited' : String(limit), user)) as [number, number];
    return ok === 1 ? { admitted: true } : { admitted: false, waitMs: n };
  }

  /** Meta told a new limit for `portfolio` (null: unlimited); it overrides the configured one. */
  async setLimit(portfolio: string, limit: MessagingLimit): Promise<void> {
    await this.redis.set(limitKey(this.keys, portfolio), limit === null ? 'unlimited' : String(limit));
  }

  /** The limit in force: Meta's latest, else `configured`; and the users reached in the last 24 h. */
  async usage(portfolio: string, configured: MessagingLimit, now = Date.now()): Promise<{ limit: MessagingLimit; users: number }> {
    const [[, stored], [, users]] = (await this.redis.pipeline().get(limitKey(this.keys, portfolio)).zcount(usersKey(this.keys, portfolio), now - WINDOW_MS, '+inf').exec()) as [[unknown, string | null], [unknown, number]];
    const limit = stored === null ? configured : stored === 'unlimited' ? null : Number(stored);
    return { limit, users };
  }
}
