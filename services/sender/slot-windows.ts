/**
 * Fleet-wide fixed windows in Redis: one counter per window, taken from in bulk.
 *
 * Why windows named by time rather than a library's own windows: rate-limiter-flexible's
 * `RateLimiterRedis` counts a fixed window that starts at the first consume and expires with a
 * whole-second `EX`, so (a) its shortest window is one second, and a 1 s window lets 2× the limit
 * through across a boundary (a full window ending at t, another starting at t), and (b) a sub-second
 * `duration` floors to 0 s and the key never expires. We want short sub-windows — 50 ms holding a
 * 21st of the per-second limit bounds ANY 1 s span to the limit (limiter.ts) — so each sub-window
 * gets its own key, `<key>:<index>` with `index = floor((now + phase) / windowMs)` on the Redis
 * clock, counted by a small Lua script (atomic: no race between replicas), with a whole-second TTL
 * that only cleans the key up after its window is over.
 *
 * Why our own script rather than the library's `consume`: a consume takes a fixed number of points
 * or none, so a gate with many waiters had to take one token per round trip — at most 1 / RTT sends
 * per second. `take(spec, wanted)` grants up to `wanted` tokens in one call: whatever the window
 * still holds. A refused take does not count (the library's does), so giving a token back is exact.
 * The counter is the library's format (an integer under `<prefix>:<key>:<index>`), so replicas of
 * the previous version count in the same keys during a rolling update.
 * The library's `execEvenly` smoothing is not used either: it delays *after* counting, per process,
 * and still lets the front of the window burst.
 */
import type { Redis } from 'ioredis';
import { luaScript, type LuaFn } from '../../shared/platform/lua-scripts.js';

export interface WindowSpec {
  /** Names the counter (e.g. `tp:<phone number id>`); the window index is appended. */
  key: string;
  windowMs: number;
  /** Shifts this key's window edges so that many keys (recipients) do not all refill at once. */
  phaseMs?: number;
  /** Tokens in window `index` (a function lets a fractional rate spread evenly over windows). */
  points: number | ((index: number) => number);
}

/**
 * `count` tokens taken (1..wanted; `slotKey` names their window, for giving some back), with
 * `nextInMs` when the window ran out before `wanted`: the next window opens in that many ms. Or
 * none, and how long until the next window.
 */
export type TakeResult = { ok: true; count: number; slotKey: string; nextInMs?: number } | { ok: false; waitMs: number };

const TAKE = luaScript({
  name: 'postmasterSlotTake',
  file: new URL('./lua/slot-take.lua', import.meta.url),
  keys: ['window'],
  args: ['points', 'wanted', 'ttlS'],
});
const GIVE_BACK = luaScript({ name: 'postmasterSlotGiveBack', file: new URL('./lua/slot-give-back.lua', import.meta.url), keys: ['window'], args: ['count'] });

export class SlotWindows {
  private readonly takeScript: LuaFn<typeof TAKE>;
  private readonly giveBackScript: LuaFn<typeof GIVE_BACK>;

  constructor(
    redis: Redis,
    private readonly keyPrefix: string,
    private readonly now: () => number,
  ) {
    this.takeScript = TAKE.bind(redis);
    this.giveBackScript = GIVE_BACK.bind(redis);
  }

  /**
   * Takes up to `wanted` tokens from the current window of `spec` in one round trip, or says how long
   * until the next window.
   */
  async take(spec: WindowSpec, wanted = 1): Promise<TakeResult> {
    const phase = spec.phaseMs ?? 0;
    const now = this.now();
    const index = Math.floor((now + phase) / spec.windowMs);
    const endsAt = (index + 1) * spec.windowMs - phase;
    const points = typeof spec.points === 'function' ? spec.points(index) : spec.points;
    if (points <= 0) return { ok: false, waitMs: Math.max(1, endsAt - now) };
    const slotKey = `${this.keyPrefix}:${spec.key}:${index}`;
    // The key must outlive its window (it is only read during it); one extra second covers clock offsets.
    const ttlS = Math.ceil(spec.windowMs / 1000) + 1;
    const count = Number(await this.takeScript({ keys: { window: slotKey }, args: { points, wanted: Math.max(1, Math.floor(wanted)), ttlS } }));
    const waitMs = Math.max(1, endsAt - this.now());
    if (count <= 0) return { ok: false, waitMs };
    return count < wanted ? { ok: true, count, slotKey, nextInMs: waitMs } : { ok: true, count, slotKey };
  }

  /** Gives `count` tokens back to their window (a later limit refused the send). Best-effort. */
  async giveBack(slotKey: string, count = 1): Promise<void> {
    await this.giveBackScript({ keys: { window: slotKey }, args: { count } });
  }
}
