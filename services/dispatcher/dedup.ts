/**
 * The dispatcher's line of idempotency-key dedup, behind the ingress's. The ingress answers a repeat
 * with the first id and publishes nothing, but one case slips past it: a publish that timed out
 * (503, key released) whose message the broker still took — the client's retry then publishes a
 * second envelope with the same key. Here the first envelope of a key to be dispatched wins and later
 * ones are dropped, within the same window the ingress keeps keys (measured from `createdAt`).
 */
import type { Envelope } from '../../shared/envelope.js';
import type { Logger } from '../../shared/logger.js';
import type { Runtime } from '../../shared/runtime.js';

export class DispatchDedup {
  constructor(private readonly rt: Pick<Runtime, 'redis' | 'keys' | 'cfg'>) {}

  /**
   * The id of the first envelope dispatched with `env`'s idempotency key: `env.id` itself when it is
   * the first (or a redelivery of it), or when the key's window is over. Redis trouble lets the
   * message through (the ingress has already deduplicated; never stall sends on this second line).
   */
  async firstOf(env: Envelope, log: Logger): Promise<string> {
    if (!env.idempotencyKey) return env.id;
    const expiresAt = Date.parse(env.createdAt) + this.rt.cfg.idempotencyTtlS * 1000;
    if (!(expiresAt > Date.now())) return env.id;
    const key = this.rt.keys('idem-dispatched', env.idempotencyKey);
    try {
      const won = await this.rt.redis.set(key, env.id, 'PXAT', expiresAt, 'NX');
      if (won) return env.id;
      return (await this.rt.redis.get(key)) ?? env.id;
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'idempotency dedup unavailable; dispatching');
      return env.id;
    }
  }
}
