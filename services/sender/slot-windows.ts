/**
 * Fleet-wide fixed windows in Redis, counted by rate-limiter-flexible.
 *
 * Why windows named by time rather than the library's own windows: `RateLimiterRedis` counts a
 * fixed window that starts at the first consume and expires with a whole-second `EX`, so (a) its
 * shortest window is one second, and a 1 s window lets 2× the limit through across a boundary (a
 * full window ending at t, another starting at t), and (b) a sub-second `duration` floors to 0 s and
 * the key never expires. We want short sub-windows — 100 ms holding a tenth of the per-second limit
 * bounds ANY 1 s span to at most 11 sub-windows, i.e. the limit plus one sub-window's worth (55 at
 * 50/s, 88 at 80/s) — so each sub-window gets its own key, `<key>:<index>` with
 * `index = floor((now + phase) / windowMs)` on the Redis clock, and the library does what it is good
 * at: the atomic increment-and-compare per key (a Lua script: one round trip, no race between
 * replicas), with a whole-second TTL that only cleans the key up after its window is over.
 * (limiter.ts sizes the sub-windows so that even the 11th-of-10 overlap stays within the limit.)
 * The library's `execEvenly` smoothing was not used: it delays *after* counting, per process, and
 * still lets the front of the window burst.
 */
import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';

export interface WindowSpec {
  /** Names the counter (e.g. `tp:<phone number id>`); the window index is appended. */
  key: string;
  windowMs: number;
  /** Shifts this key's window edges so that many keys (recipients) do not all refill at once. */
  phaseMs?: number;
  /** Tokens in window `index` (a function lets a fractional rate spread evenly over windows). */
  points: number | ((index: number) => number);
}

/** A token taken (`slotKey` names its window, for giving it back), or how long until the next window (0: try again now). */
export type TakeResult = { ok: true; slotKey: string; windowMs: number; points: number } | { ok: false; waitMs: number };

export class SlotWindows {
  private readonly limiters = new Map<string, RateLimiterRedis>();

  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly now: () => number,
  ) {}

  /** Takes one token from the current window of `spec`, or says how long until the next window. */
  async take(spec: WindowSpec): Promise<TakeResult> {
    const phase = spec.phaseMs ?? 0;
    const now = this.now();
    const index = Math.floor((now + phase) / spec.windowMs);
    const endsAt = (index + 1) * spec.windowMs - phase;
    const points = typeof spec.points === 'function' ? spec.points(index) : spec.points;
    if (points <= 0) return { ok: false, waitMs: Math.max(1, endsAt - now) };
    const slotKey = `${spec.key}:${index}`;
    try {
      await this.limiter(points, spec.windowMs).consume(slotKey, 1);
      return { ok: true, slotKey, windowMs: spec.windowMs, points };
    } catch (err) {
      if (err instanceof RateLimiterRes) return { ok: false, waitMs: Math.max(1, endsAt - this.now()) };
      throw err;
    }
  }

  /**
   * Gives a token back (a later limit refused the send). Best-effort: refused takes also count in
   * the window, so a give-back frees a token only if the window was not overdrawn meanwhile.
   */
  async giveBack(t: Extract<TakeResult, { ok: true }>): Promise<void> {
    await this.limiter(t.points, t.windowMs).reward(t.slotKey, 1);
  }

  /** One library limiter per (points, TTL): `points` is the limiter's threshold. */
  private limiter(points: number, windowMs: number): RateLimiterRedis {
    // The key must outlive its window (it is only read during it); one extra second covers clock offsets.
    const ttlS = Math.ceil(windowMs / 1000) + 1;
    const id = `${points}/${ttlS}`;
    let l = this.limiters.get(id);
    if (!l) {
      l = new RateLimiterRedis({ storeClient: this.redis, keyPrefix: this.keyPrefix, points, duration: ttlS });
      this.limiters.set(id, l);
    }
    return l;
  }
}
