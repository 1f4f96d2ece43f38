/**
 * The sender's business numbers: one rate limiter per number (throughput, pair rate, the provider's
 * penalties and AIMD factor, all keyed by the number's id), one Redis clock shared by them, and the
 * messaging limit of each number's portfolio (shared/domain/messaging-limit.ts).
 */
import type { Config } from '../../shared/platform/config.js';
import type { Envelope } from '../../shared/domain/envelope.js';
import { PermanentError, ThrottledError } from '../../shared/failures/errors.js';
import { MessagingLimits } from '../../shared/domain/messaging-limit.js';
import { businessNumbers, type BusinessNumber, type BusinessNumbers } from '../../shared/platform/numbers.js';
import type { Runtime } from '../../shared/amqp/runtime.js';
import type { SenderMetrics } from './metrics.js';
import { limiterOptions, SendLimiter } from './limiter.js';
import { RedisClock } from './redis-clock.js';

export class SenderNumbers {
  readonly numbers: BusinessNumbers;
  readonly clock: RedisClock;
  private readonly limiters = new Map<string, SendLimiter>();
  private readonly limits: MessagingLimits;

  constructor(private readonly rt: Pick<Runtime<SenderMetrics>, 'redis' | 'keys' | 'metrics' | 'cfg'>) {
    this.numbers = businessNumbers(rt.cfg);
    this.clock = new RedisClock(rt.redis);
    for (const n of this.numbers.all) {
      const opts = { ...limiterOptions(rt.cfg), phoneNumberId: n.id, throughputPerSecond: n.throughputPerSecond };
      this.limiters.set(n.id, new SendLimiter({ redis: rt.redis, keys: rt.keys, metrics: rt.metrics, clock: this.clock }, opts));
    }
    this.limits = new MessagingLimits(rt.redis, rt.keys);
  }

  /** The default number's limiter (its options are every limiter's, but for the throughput). */
  get default(): SendLimiter {
    return this.limiters.get(this.numbers.default.id)!;
  }

  async start(): Promise<void> {
    await this.clock.start();
  }

  /** The number `env` goes out from; a number this sender does not have is a permanent failure (replayable once configured). */
  numberOf(env: Pick<Envelope, 'from'>): BusinessNumber {
    const n = this.numbers.of(env.from);
    if (!n)
      throw new PermanentError(`business number ${env.from} is not configured in this sender (WHATSAPP_NUMBERS); replay once it is`, {
        code: 'unknown-number',
      });
    return n;
  }

  limiterOf(env: Pick<Envelope, 'from'>): SendLimiter {
    return this.limiters.get(this.numberOf(env).id)!;
  }

  /**
   * A business-initiated message (a template to a user whose window is closed) counts against its
   * portfolio's messaging limit. Past the limit it throws: ThrottledError (WHATSAPP_MESSAGING_LIMIT_ACTION
   * =wait: re-tiered until a conversation ages out) or PermanentError (fail: dead-lettered).
   */
  async admitBusinessInitiated(env: Envelope): Promise<void> {
    const n = this.numberOf(env);
    const configured = this.numbers.messagingLimit(n.portfolio);
    let a;
    try {
      a = await this.limits.admitUser(n.portfolio, configured, env.user);
    } catch (err) {
      throw new ThrottledError(`messaging limit state unavailable (${(err as Error).message})`, { code: 'limit-unavailable', retryAfterMs: 1000, cause: err });
    }
    this.rt.metrics.messagingLimit.inc({ portfolio: n.portfolio, outcome: a.admitted ? 'admitted' : 'refused' });
    if (a.admitted) return;
    const msg = `messaging limit of portfolio ${n.portfolio} reached: as many users as its tier allows got a business-initiated message in the last 24 hours`;
    if (this.rt.cfg.whatsappMessagingLimitAction === 'fail') throw new PermanentError(`${msg} (not sent)`, { code: 'messaging-limit' });
    throw new ThrottledError(`${msg}; the next frees in ${Math.ceil(a.waitMs / 1000)} s`, { code: 'messaging-limit', retryAfterMs: a.waitMs });
  }

  close(): void {
    for (const l of this.limiters.values()) l.close();
    this.clock.close();
  }
}

/** The provider client's numbers and tokens: every configured number with the token its tokenEnv names. */
export function providerNumbers(
  cfg: Config,
  tokens: Map<string, string>,
): { phoneNumberId: string; accessToken: string; others: Array<{ id: string; accessToken: string }> } {
  const [first, ...rest] = businessNumbers(cfg).all;
  return { phoneNumberId: first.id, accessToken: tokens.get(first.id)!, others: rest.map((n) => ({ id: n.id, accessToken: tokens.get(n.id)! })) };
}
