/**
 * An in-process queue of sends waiting for one rate limit's tokens, in front of the fleet-wide
 * counter: urgent waiters are served before normal ones (FIFO within each), and one pump per gate
 * asks Redis for a token only when someone is waiting, at most once per window when the window is
 * full — so a thousand waiters cost one Redis call per token, not a thousand polls.
 *
 * A waiter has a deadline (now + the longest in-process wait). It is turned away with a
 * ThrottledError — re-tiered by the stage worker without counting an attempt — as soon as it is
 * clear it cannot be served in time: on arrival, when the queue ahead of it would take longer than
 * that at the pace tokens have been arriving here; and whenever the counter says the next token is
 * further away than its deadline (a full window, or the provider's penalty).
 *
 * Priority holds within this process only. Replicas take tokens from the shared counter
 * independently, so a normal send on replica A can take the token an urgent send on replica B was
 * waiting for; B's urgent sends still go before B's own normal sends, and urgent messages all come
 * through the one urgent queue whose consumers outrank the shard consumers.
 */
import { ThrottledError } from '../../shared/failures/errors.js';
import { throttled } from '../../shared/failures/classify.js';

/** What one try at the shared counter says: a token (with a way to give it back), or how long to wait. */
export type GateTake = { ok: true; release: () => Promise<void> } | { ok: false; waitMs: number };

export interface Grant {
  /** Gives the token back when a later limit refuses the send (best-effort). */
  release(): Promise<void>;
  /** Whether the send had to wait (others were ahead, or the counter said wait). */
  waited: boolean;
  waitedMs: number;
}

export interface GateOptions {
  /** Names the limit in ThrottledError codes (`limit-<name>`) and metrics. */
  limit: string;
  take: () => Promise<GateTake>;
  now: () => number;
  /** Called when the queue empties (a per-recipient gate can then be dropped). */
  onIdle?: () => void;
}

interface Waiter {
  urgent: boolean;
  deadline: number;
  since: number;
  waited: boolean;
  resolve(g: Grant): void;
  reject(err: Error): void;
}

/** Weight of the newest gap in the moving average of the time between grants. */
const EMA_WEIGHT = 0.2;

export class PriorityGate {
  private readonly urgent: Waiter[] = [];
  private readonly normal: Waiter[] = [];
  private pumping = false;
  private wake: { at: number; timer: NodeJS.Timeout; done: () => void } | null = null;
  /** Moving average of ms between grants while others were waiting: the local pace of this limit. */
  private paceMs = 0;
  private lastGrantAt = 0;
  private busyAtLastGrant = false;
  private closed = false;

  constructor(private readonly opts: GateOptions) {}

  get size(): number {
    return this.urgent.length + this.normal.length;
  }

  get idle(): boolean {
    return this.size === 0 && !this.pumping;
  }

  /** Resolves with a token; rejects with a ThrottledError when it cannot come before `deadline`. */
  acquire(urgent: boolean, deadline: number): Promise<Grant> {
    const now = this.opts.now();
    if (this.closed) return Promise.reject(this.turnAway(0));
    const ahead = urgent ? this.urgent.length : this.size;
    // The pump may be asleep until the next window or the end of a provider penalty.
    const estimate = Math.max(ahead * this.paceMs, this.wake ? this.wake.at - now : 0);
    if (estimate > 0 && now + estimate > deadline) return Promise.reject(this.turnAway(estimate));
    return new Promise<Grant>((resolve, reject) => {
      const waited = ahead > 0 || this.wake !== null;
      (urgent ? this.urgent : this.normal).push({ urgent, deadline, since: now, waited, resolve, reject });
      void this.pump();
    });
  }

  /** Turns every waiter away (shutdown); later acquires are turned away at once. Idempotent. */
  close(): void {
    this.closed = true;
    this.wake?.done();
    for (const w of this.drain()) w.reject(this.turnAway(0));
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.closed && this.size > 0) {
        this.expire(this.opts.now(), 0);
        if (this.size === 0) break;
        let r: GateTake;
        try {
          r = await this.opts.take();
        } catch (err) {
          this.failAll(err);
          break;
        }
        if (r.ok) {
          this.grant(r);
          continue;
        }
        // Nobody here can be served before the counter's next window: turn away who cannot wait that long.
        for (const w of this.urgent) w.waited = true;
        for (const w of this.normal) w.waited = true;
        this.expire(this.opts.now() + r.waitMs, r.waitMs);
        if (this.size > 0) await this.sleep(r.waitMs);
      }
    } finally {
      this.pumping = false;
      if (this.size === 0) this.opts.onIdle?.();
    }
  }

  private grant(r: Extract<GateTake, { ok: true }>): void {
    const w = this.urgent.shift() ?? this.normal.shift();
    if (!w) {
      // The waiter left while the token was on its way: hand it back for others.
      void r.release().catch(() => {});
      return;
    }
    const now = this.opts.now();
    if (this.busyAtLastGrant) {
      const gap = now - this.lastGrantAt;
      this.paceMs = this.paceMs === 0 ? gap : this.paceMs * (1 - EMA_WEIGHT) + gap * EMA_WEIGHT;
    }
    this.lastGrantAt = now;
    this.busyAtLastGrant = this.size > 0;
    w.resolve({ release: r.release, waited: w.waited, waitedMs: now - w.since });
  }

  /** Turns away the waiters whose deadline comes before `horizon`. */
  private expire(horizon: number, minWaitMs: number): void {
    for (const queue of [this.urgent, this.normal]) {
      for (let i = 0; i < queue.length; ) {
        const w = queue[i];
        if (w.deadline >= horizon) {
          i++;
          continue;
        }
        queue.splice(i, 1);
        const position = (w.urgent ? 0 : this.urgent.length) + i;
        w.reject(this.turnAway(Math.max(minWaitMs, (position + 1) * this.paceMs)));
      }
    }
  }

  private failAll(err: unknown): void {
    for (const w of this.drain()) {
      w.reject(new ThrottledError(`rate limit ${this.opts.limit}: counter unavailable (${(err as Error)?.message ?? err})`, {
        code: 'limit-unavailable',
        retryAfterMs: 1000,
        cause: err,
      }));
    }
  }

  private drain(): Waiter[] {
    return [...this.urgent.splice(0), ...this.normal.splice(0)];
  }

  private turnAway(waitMs: number): ThrottledError {
    return throttled(this.opts.limit, Math.max(1, Math.round(waitMs)));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      this.wake = { at: this.opts.now() + ms, timer, done };
    });
  }
}
