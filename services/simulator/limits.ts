/**
 * Sliding-log rate windows for the simulator's throttles: the business number's throughput and the
 * per-recipient pair rate. Each window remembers only the times of its last `limit` accepted sends
 * (a ring buffer), so a check is O(1) and memory does not grow with traffic.
 */
export class RateWindow {
  private readonly times: Float64Array;
  private head = 0;
  private count = 0;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {
    this.times = new Float64Array(Math.max(1, limit));
  }

  /** True when one more send at `now` keeps at most `limit` sends inside (now - windowMs, now]. */
  allows(now: number): boolean {
    return this.count < this.limit || this.times[this.head] <= now - this.windowMs;
  }

  record(now: number): void {
    if (this.count < this.limit) {
      this.times[(this.head + this.count) % this.limit] = now;
      this.count++;
      return;
    }
    this.times[this.head] = now;
    this.head = (this.head + 1) % this.limit;
  }

  /** Time of the most recent recorded send, or -Infinity. */
  newest(): number {
    return this.count === 0 ? -Infinity : this.times[(this.head + this.count - 1) % this.limit];
  }
}

/** One window per recipient; windows that have gone quiet are swept so memory follows live pairs. */
export class PairLimiter {
  private readonly windows = new Map<string, RateWindow>();
  private lastSweep = 0;

  constructor(
    readonly count: number,
    readonly windowMs: number,
  ) {}

  allows(to: string, now: number): boolean {
    return this.windows.get(to)?.allows(now) ?? this.count > 0;
  }

  record(to: string, now: number): void {
    let window = this.windows.get(to);
    if (!window) {
      window = new RateWindow(this.count, this.windowMs);
      this.windows.set(to, window);
    }
    window.record(now);
    this.sweep(now);
  }

  get size(): number {
    return this.windows.size;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs || this.windows.size < 1024) return;
    this.lastSweep = now;
    for (const [to, window] of this.windows) if (window.newest() <= now - this.windowMs) this.windows.delete(to);
  }
}
