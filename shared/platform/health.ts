/**
 * Readiness and liveness that tell the truth. A service registers checks (each answers null while
 * fine, or why it is not); a timer evaluates them every second, so "failing since" is known even
 * when nobody probes, and measures how late it fires (event-loop lag).
 * - ready: every check passes (Kubernetes stops routing to a pod that cannot publish or consume).
 * - live: no check has been failing for longer than HEALTH_STUCK_AFTER_MS and the event loop was not
 *   blocked for longer than EVENT_LOOP_BLOCKED_MS at the last tick (Kubernetes restarts a process
 *   stuck in such a state instead of leaving it to answer 503 forever).
 */
import type { Metrics } from './metrics.js';

export type Check = () => string | null;

export interface HealthOptions {
  stuckAfterMs: number;
  loopBlockedMs: number;
  tickMs?: number;
}

export interface HealthReport {
  ok: boolean;
  /** Failing checks: their reason and since when (ms epoch). */
  failing: Record<string, { reason: string; since: number }>;
}

export class Health {
  private readonly checks = new Map<string, Check>();
  private readonly since = new Map<string, { reason: string; since: number }>();
  private lagMs = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly tickMs: number;

  constructor(
    private readonly metrics: Metrics,
    private readonly opts: HealthOptions,
  ) {
    this.tickMs = opts.tickMs ?? 1000;
  }

  add(name: string, check: Check): this {
    this.checks.set(name, check);
    return this;
  }

  /** Starts the ticking; idempotent. */
  start(): this {
    if (this.timer) return this;
    let expected = Date.now() + this.tickMs;
    const tick = () => {
      const now = Date.now();
      this.lagMs = Math.max(0, now - expected);
      expected = now + this.tickMs;
      this.evaluate(now);
      this.timer = setTimeout(tick, this.tickMs);
      this.timer.unref();
    };
    this.timer = setTimeout(tick, this.tickMs);
    this.timer.unref();
    return this;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private evaluate(now = Date.now()): void {
    for (const [name, check] of this.checks) {
      let reason: string | null;
      try {
        reason = check();
      } catch (err) {
        reason = `check threw: ${(err as Error).message}`;
      }
      const was = this.since.get(name);
      if (reason === null) this.since.delete(name);
      else this.since.set(name, { reason, since: was?.since ?? now });
      this.metrics.unhealthy.set({ check: name }, reason === null ? 0 : (now - (was?.since ?? now)) / 1000);
    }
    this.metrics.unhealthy.set({ check: 'event-loop' }, this.lagMs / 1000);
  }

  readiness(): HealthReport {
    this.evaluate();
    return { ok: this.since.size === 0, failing: Object.fromEntries(this.since) };
  }

  liveness(): HealthReport {
    this.evaluate();
    const now = Date.now();
    const failing: HealthReport['failing'] = {};
    for (const [name, f] of this.since) if (now - f.since > this.opts.stuckAfterMs) failing[name] = f;
    if (this.lagMs > this.opts.loopBlockedMs) failing['event-loop'] = { reason: `event loop blocked for ${this.lagMs} ms`, since: now - this.lagMs };
    return { ok: Object.keys(failing).length === 0, failing };
  }
}
