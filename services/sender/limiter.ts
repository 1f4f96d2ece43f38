/**
 * The sender's rate limits, shared by every replica through Redis (docs/SENDER.md, "The limits"):
 *
 * - **throughput** per business number: WHATSAPP_THROUGHPUT_PER_SECOND, counted in 50 ms
 *   sub-windows (slot-windows.ts says why sub-windows, SLOT_MS below why this size), so ANY 1 s
 *   span carries at most the limit, and the long-run rate is 20/21 of it;
 * - **pair rate** per recipient: WHATSAPP_PAIR_BURST sends per window of BURST × INTERVAL ms (the
 *   long-run rate is one per interval; a user may get a burst, then waits out the window — Meta's
 *   own description of its pair limit), each recipient's windows shifted by a hash of its number so
 *   that recipients do not all refill at the same instant;
 * - the **provider's penalties and AIMD factor** (provider-backoff.ts) in front of both.
 *
 * A send waits in-process (PriorityGate: urgent first) for at most WHATSAPP_MAX_TOKEN_WAIT_MS;
 * a longer wait throws ThrottledError, which the stage worker re-tiers without counting an attempt
 * (strict ordering keeps the user's later messages behind it).
 *
 * A limit that is off costs nothing: with WHATSAPP_THROUGHPUT_PER_SECOND=0 a send passes no number
 * gate unless the provider's penalty holds (or sends are already queued behind one), and with the
 * pair limit off no recipient gate unless some recipient may be paused (the pair marker of
 * provider-backoff.ts). Only the number's cached state is read — in the background, every 100 ms.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config } from '../../shared/platform/config.js';
import type { Envelope } from '../../shared/domain/envelope.js';
import { isRateLimitCode } from '../../shared/failures/classify.js';
import { ClassifiedError, ThrottledError } from '../../shared/failures/errors.js';
import type { SenderMetrics } from './metrics.js';
import type { Keyspace } from '../../shared/platform/redis.js';
import { PriorityGate, type GateTake, type Grant } from './priority-gate.js';
import { ProviderBackoff, type NumberState } from './provider-backoff.js';
import { RedisClock } from './redis-clock.js';
import { SlotWindows } from './slot-windows.js';

/**
 * Sub-window of the throughput limit. A 1 s span overlaps up to SLOTS_PER_SECOND + 1 sub-windows,
 * so each holds rate / (SLOTS_PER_SECOND + 1): ANY 1 s span then carries at most the limit (by the
 * time tokens are used), not 1.1× — the headroom absorbs what happens after the token (a busy event
 * loop, a slow connection) before the provider counts the send. The cost is the long-run rate:
 * 20/21 of the limit (76/s at 80/s). Shorter sub-windows would waste less but drop more tokens that
 * come back late from Redis (slot-windows.ts) and cost more refused tries per second.
 */
const SLOT_MS = 50;
const SLOTS_PER_SECOND = 1000 / SLOT_MS;
/** Cloud API code of the pair rate limit; every other rate-limit code slows the whole number. */
export const PAIR_RATE_CODE = '131056';

export interface LimiterOptions {
  phoneNumberId: string;
  /** 0 = off. */
  throughputPerSecond: number;
  /** 0 (or burst 0) = off. */
  pairIntervalMs: number;
  pairBurst: number;
  maxTokenWaitMs: number;
  throttleBackoffMs: number;
  rateCooldownMs: number;
}

export function limiterOptions(cfg: Config): LimiterOptions {
  return {
    phoneNumberId: cfg.whatsappPhoneNumberId,
    throughputPerSecond: cfg.whatsappThroughputPerSecond,
    pairIntervalMs: cfg.whatsappPairIntervalMs,
    pairBurst: cfg.whatsappPairBurst,
    maxTokenWaitMs: cfg.whatsappMaxTokenWaitMs,
    throttleBackoffMs: cfg.whatsappThrottleBackoffMs,
    rateCooldownMs: cfg.whatsappRateCooldownMs,
  };
}

export interface LimiterDeps {
  redis: Redis;
  keys: Keyspace;
  metrics: SenderMetrics;
  /** A clock shared by the limiters of several numbers; without one the limiter runs its own. */
  clock?: RedisClock;
}

/** `wanted` tokens of a limit that is off. */
function free(wanted: number): GateTake {
  return { ok: true, count: wanted, release: async () => {} };
}

/**
 * Tokens in throughput sub-window `i` at `rate`/s: spread evenly (a fractional share carries over),
 * so that any SLOTS_PER_SECOND + 1 consecutive sub-windows — all a 1 s span can touch — hold at most
 * `rate` tokens.
 */
export function slotPoints(rate: number, i: number): number {
  const perSlot = rate / (SLOTS_PER_SECOND + 1);
  return Math.floor((i + 1) * perSlot) - Math.floor(i * perSlot);
}

/** Where a recipient's pair windows start, 0..windowMs-1, stable for the recipient. */
export function phaseOf(user: string, windowMs: number): number {
  return createHash('sha1').update(user).digest().readUInt32BE(0) % windowMs;
}

/** True for the provider's rate-limit answers: 130429, 131056, 80007, 4, 80008, or a 429 without a code. */
export function isProviderThrottle(err: unknown): err is ClassifiedError {
  return err instanceof ClassifiedError && (isRateLimitCode(err.code) || err.code === 'http-429');
}

export class SendLimiter {
  readonly clock: RedisClock;
  readonly backoff: ProviderBackoff;
  private readonly windows: SlotWindows;
  private readonly numberGate: PriorityGate;
  private readonly pairGates = new Map<string, PriorityGate>();
  private closed = false;
  private gaugeTimer: NodeJS.Timeout | null = null;
  private readonly ownClock: boolean;

  constructor(
    private readonly deps: LimiterDeps,
    readonly opts: LimiterOptions,
  ) {
    this.ownClock = !deps.clock;
    this.clock = deps.clock ?? new RedisClock(deps.redis);
    const now = () => this.clock.now();
    this.windows = new SlotWindows(deps.redis, deps.keys('rl'), now);
    this.backoff = new ProviderBackoff(deps.redis, deps.keys, {
      phoneNumberId: opts.phoneNumberId,
      cooldownMs: opts.rateCooldownMs,
      now,
      onState: (s) => this.gauge(s),
    });
    this.numberGate = new PriorityGate({ limit: 'throughput', take: (wanted) => this.takeNumber(wanted), now });
  }

  get pairLimited(): boolean {
    return this.opts.pairIntervalMs > 0 && this.opts.pairBurst > 0;
  }

  async start(): Promise<void> {
    if (this.ownClock) await this.clock.start();
  }

  /**
   * Waits for this message's tokens: its recipient's (pair rate), then the number's. Throws
   * ThrottledError (with the estimated wait) when they cannot come within the longest in-process wait.
   */
  async acquire(env: Pick<Envelope, 'user' | 'priority'>): Promise<void> {
    const urgent = env.priority === 'urgent';
    const deadline = this.clock.now() + this.opts.maxTokenWaitMs;
    let state = await this.numberState();
    let pair: Grant | null = null;
    if (this.pairLimited || state.pairPenaltyUntil > this.clock.now() || this.pairGates.has(env.user)) {
      pair = await this.wait('pair', this.pairGate(env.user), urgent, deadline);
      state = await this.numberState().catch(async (err: unknown) => {
        await pair?.release().catch(() => {});
        throw err;
      });
    }
    if (this.opts.throughputPerSecond <= 0 && state.penaltyUntil <= this.clock.now() && this.numberGate.idle && !this.closed) return;
    try {
      await this.wait('throughput', this.numberGate, urgent, deadline);
    } catch (err) {
      await pair?.release().catch(() => {});
      throw err;
    }
  }

  /**
   * The provider throttled this send: pause the recipient (131056) or the whole number (any other
   * rate limit, and halve its rate) for the advised time, shared with every replica. Returns the
   * error to throw — throttled, with the time left before a send may go — and whether the pause was
   * recorded (if Redis did not take it, the limiter will not make a retry here wait for it).
   */
  async onProviderThrottle(env: Pick<Envelope, 'user'>, err: ClassifiedError): Promise<{ error: ThrottledError; paused: boolean }> {
    const pair = err.code === PAIR_RATE_CODE;
    const advised = err.retryAfterMs ?? (pair ? Math.max(this.opts.throttleBackoffMs, this.opts.pairIntervalMs) : this.opts.throttleBackoffMs);
    let until = this.clock.now() + advised;
    let paused = true;
    try {
      until = pair ? await this.backoff.pausePair(env.user, advised) : (await this.backoff.slowNumber(advised)).penaltyUntil;
    } catch {
      paused = false; // this message still waits the advised time, in a retry tier
    }
    const waitMs = Math.max(1, until - this.clock.now());
    const error = new ThrottledError(`${err.message} (${pair ? 'recipient' : 'number'} paused ${waitMs} ms)`, {
      code: err.code,
      retryAfterMs: waitMs,
      cause: err,
    });
    return { error, paused };
  }

  /** Turns every waiter away (they are re-tiered) and stops the clock. Idempotent. */
  close(): void {
    this.closed = true;
    this.numberGate.close();
    for (const g of this.pairGates.values()) g.close();
    this.pairGates.clear();
    if (this.ownClock) this.clock.close();
    if (this.gaugeTimer) clearTimeout(this.gaugeTimer);
  }

  /** The number's state; a failed read throws what a gate throws when its counter is unavailable. */
  private async numberState(): Promise<NumberState> {
    try {
      return await this.backoff.numberState();
    } catch (err) {
      throw new ThrottledError(`rate limit state unavailable (${(err as Error)?.message ?? err})`, {
        code: 'limit-unavailable',
        retryAfterMs: 1000,
        cause: err,
      });
    }
  }

  private async wait(limit: string, gate: PriorityGate, urgent: boolean, deadline: number): Promise<Grant> {
    const started = this.clock.now();
    try {
      const grant = await gate.acquire(urgent, deadline);
      if (grant.waited) this.observeWait(limit, grant.waitedMs);
      return grant;
    } catch (err) {
      this.observeWait(limit, this.clock.now() - started);
      throw err;
    }
  }

  private observeWait(limit: string, ms: number): void {
    this.deps.metrics.tokensWaited.inc({ limit });
    this.deps.metrics.throttleWaitSeconds.observe({ limit }, Math.max(0, ms) / 1000);
  }

  private pairGate(user: string): PriorityGate {
    let gate = this.pairGates.get(user);
    if (!gate || this.closed) {
      const g: PriorityGate = new PriorityGate({
        limit: 'pair',
        take: (wanted) => this.takePair(user, wanted),
        now: () => this.clock.now(),
        onIdle: () => {
          if (g.idle && this.pairGates.get(user) === g) this.pairGates.delete(user);
        },
      });
      if (this.closed) g.close();
      else this.pairGates.set(user, g);
      gate = g;
    }
    return gate;
  }

  private async takePair(user: string, wanted: number): Promise<GateTake> {
    const s = await this.backoff.numberState();
    // The recipient's own penalty is read only while the marker says some recipient may be paused.
    if (s.pairPenaltyUntil > this.clock.now()) {
      const until = await this.backoff.pairPenaltyUntil(user);
      const now = this.clock.now();
      if (until > now) return { ok: false, waitMs: until - now, penalty: true };
    }
    if (!this.pairLimited) return free(wanted);
    const windowMs = this.opts.pairBurst * this.opts.pairIntervalMs;
    const t = await this.windows.take(
      { key: `pair:${this.opts.phoneNumberId}:${user}`, windowMs, phaseMs: phaseOf(user, windowMs), points: this.opts.pairBurst },
      wanted,
    );
    return t.ok ? { ok: true, count: t.count, nextInMs: t.nextInMs, release: (n = 1) => this.windows.giveBack(t.slotKey, n) } : t;
  }

  private async takeNumber(wanted: number): Promise<GateTake> {
    const s = await this.backoff.numberState();
    const now = this.clock.now();
    if (s.penaltyUntil > now) return { ok: false, waitMs: s.penaltyUntil - now, penalty: true };
    const limit = this.opts.throughputPerSecond;
    if (limit <= 0) return free(wanted);
    const rate = limit * s.factor;
    const t = await this.windows.take({ key: `tp:${this.opts.phoneNumberId}`, windowMs: SLOT_MS, points: (i) => slotPoints(rate, i) }, wanted);
    return t.ok ? { ok: true, count: t.count, nextInMs: t.nextInMs, release: (n = 1) => this.windows.giveBack(t.slotKey, n) } : t;
  }

  private gauge(s: NumberState): void {
    if (this.opts.throughputPerSecond <= 0 || this.closed) return;
    const left = s.penaltyUntil - this.clock.now();
    this.deps.metrics.sendRate.set({ number: this.opts.phoneNumberId }, left > 0 ? 0 : this.opts.throughputPerSecond * s.factor);
    // Show the rate again when the penalty ends, even if no send reads the state by then.
    if (this.gaugeTimer) clearTimeout(this.gaugeTimer);
    this.gaugeTimer = left > 0 ? setTimeout(() => this.gauge({ ...s, penaltyUntil: 0 }), left).unref() : null;
  }
}
