/**
 * What the provider told us to do, shared by every sender replica through Redis, so the fleet slows
 * down as one instead of each message retrying on its own clock.
 *
 * - **Penalty until** — `penalty:number:<phone number id>` and `penalty:pair:<phone number id>:<recipient>` hold a
 *   time (Redis clock, ms) before which nothing is sent from the number / to the recipient. Set on
 *   130429 / 429 (number) or 131056 (recipient) to now + Retry-After, or a default backoff when the
 *   provider sends none (Meta's throttles never do). A later deadline is never shortened.
 * - **AIMD rate factor** — `rate:<phone number id>` = { f, at }. Every number-wide throttle halves the
 *   factor (multiplicative decrease, at most once per second: the other 429s of the same burst were
 *   sent at the old rate and say nothing new; never below a tenth). The factor holds for one
 *   cool-down and then regains 0.1 per cool-down (additive increase) back to 1. The sender's rate is
 *   WHATSAPP_THROUGHPUT_PER_SECOND × factor: if our configured rate is above what the provider really
 *   allows (a new number, a lower tier), the fleet settles in a saw-tooth just under the provider's
 *   rate instead of bouncing off it every second. The key expires once the factor is back at 1.
 *
 * - **Some recipient paused until** — `penalty:pair-any:<phone number id>` holds the latest deadline
 *   of any recipient's penalty, so that while no recipient is paused (nearly always) nobody reads a
 *   recipient's penalty per message.
 *
 * The number's state (with the pair marker) is read in one pipelined round trip at most every 100 ms
 * per replica, in the background while the last read is under a second old (a send does not wait
 * for it), and updated at once from this replica's own throttles; a recipient's penalty is read per
 * message only while the marker says some recipient may be paused.
 */
import type { Redis } from 'ioredis';
import { luaScript, type LuaFn } from '../../shared/platform/lua-scripts.js';
import type { Keyspace } from '../../shared/platform/redis.js';

const MIN_FACTOR = 0.1;
const STEP = 0.1;
/** At most one decrease per this long: the provider measures throughput per second. */
const DECREASE_GUARD_MS = 1000;
const STATE_REFRESH_MS = 100;
/** Up to this age the state is used as it is while a read refreshes it; older, a send waits for the read. */
const STATE_MAX_STALE_MS = 1000;

export interface NumberState {
  /** Redis-clock ms before which the number must not send (0 = no penalty). */
  penaltyUntil: number;
  /** AIMD factor applied to the configured rate, 0.1..1. */
  factor: number;
  /** Redis-clock ms before which some recipient may be paused (0 = none): read recipients' penalties until then. */
  pairPenaltyUntil: number;
}

/** The factor `f` set at `at`, after the additive increase since then. */
export function effectiveFactor(f: number, at: number, now: number, cooldownMs: number): number {
  if (cooldownMs <= 0) return 1;
  return Math.min(1, f + STEP * Math.floor(Math.max(0, now - at) / cooldownMs));
}

const SLOW_DOWN = luaScript({
  name: 'postmasterSlowNumber',
  file: new URL('./lua/slow-number.lua', import.meta.url),
  keys: ['penalty', 'rate'],
  args: ['now', 'until', 'cooldownMs', 'minFactor', 'step', 'guardMs'],
});
const PAUSE_PAIR = luaScript({
  name: 'postmasterPausePair',
  file: new URL('./lua/pause-pair.lua', import.meta.url),
  keys: ['penalty', 'marker'],
  args: ['now', 'until'],
});

export interface BackoffOptions {
  phoneNumberId: string;
  cooldownMs: number;
  now: () => number;
  /** Told the number's state whenever it is read or changed (the rate gauge). */
  onState?: (s: NumberState) => void;
}

export class ProviderBackoff {
  private state: NumberState = { penaltyUntil: 0, factor: 1, pairPenaltyUntil: 0 };
  private readAt = -Infinity;
  private reading: Promise<NumberState> | null = null;
  private readonly slowDownScript: LuaFn<typeof SLOW_DOWN>;
  private readonly pausePairScript: LuaFn<typeof PAUSE_PAIR>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
    private readonly opts: BackoffOptions,
  ) {
    this.slowDownScript = SLOW_DOWN.bind(redis);
    this.pausePairScript = PAUSE_PAIR.bind(redis);
  }

  private numberPenaltyKey(): string {
    return this.keys('penalty', 'number', this.opts.phoneNumberId);
  }
  private pairPenaltyKey(user: string): string {
    return this.keys('penalty', 'pair', this.opts.phoneNumberId, user);
  }
  private rateKey(): string {
    return this.keys('rate', this.opts.phoneNumberId);
  }
  private pairMarkerKey(): string {
    return this.keys('penalty', 'pair-any', this.opts.phoneNumberId);
  }

  /**
   * The number's penalty, factor and pair marker: at most 100 ms old, or — while a read refreshes it
   * in the background — at most a second.
   */
  async numberState(): Promise<NumberState> {
    const age = this.opts.now() - this.readAt;
    if (age < STATE_REFRESH_MS) return this.state;
    const reading = (this.reading ??= this.read().finally(() => (this.reading = null)));
    if (age < STATE_MAX_STALE_MS) {
      reading.catch(() => {}); // a later send waits for a read, and sees its error, once this state is too old
      return this.state;
    }
    return reading;
  }

  private async read(): Promise<NumberState> {
    const res = await this.redis.pipeline().get(this.numberPenaltyKey()).hmget(this.rateKey(), 'f', 'at').get(this.pairMarkerKey()).exec();
    const failed = res?.find(([err]) => err);
    if (!res || failed) throw failed?.[0] ?? new Error('redis pipeline returned nothing');
    const now = this.opts.now();
    const [f, at] = res[1][1] as [string | null, string | null];
    this.state = {
      penaltyUntil: Number(res[0][1] ?? 0),
      factor: f === null ? 1 : effectiveFactor(Number(f), Number(at ?? 0), now, this.opts.cooldownMs),
      pairPenaltyUntil: Number(res[2][1] ?? 0),
    };
    this.readAt = now;
    this.opts.onState?.(this.state);
    return this.state;
  }

  /** Redis-clock ms before which nothing may go to `user` (0 = none). */
  async pairPenaltyUntil(user: string): Promise<number> {
    return Number((await this.redis.get(this.pairPenaltyKey(user))) ?? 0);
  }

  /** The provider throttled the number: pause it for `waitMs` and halve its rate. */
  async slowNumber(waitMs: number): Promise<NumberState> {
    const now = this.opts.now();
    waitMs = Math.ceil(waitMs);
    const [until, factor] = (await this.slowDownScript({
      keys: { penalty: this.numberPenaltyKey(), rate: this.rateKey() },
      args: { now, until: now + waitMs, cooldownMs: this.opts.cooldownMs, minFactor: MIN_FACTOR, step: STEP, guardMs: DECREASE_GUARD_MS },
    })) as [string, string];
    this.state = { ...this.state, penaltyUntil: Number(until), factor: Number(factor) };
    this.readAt = now;
    this.opts.onState?.(this.state);
    return this.state;
  }

  /** The provider throttled one recipient (pair rate): pause sends to it for `waitMs`. */
  async pausePair(user: string, waitMs: number): Promise<number> {
    const now = this.opts.now();
    waitMs = Math.ceil(waitMs);
    const until = Number(
      await this.pausePairScript({ keys: { penalty: this.pairPenaltyKey(user), marker: this.pairMarkerKey() }, args: { now, until: now + waitMs } }),
    );
    this.state = { ...this.state, pairPenaltyUntil: Math.max(this.state.pairPenaltyUntil, until) };
    return until;
  }
}
