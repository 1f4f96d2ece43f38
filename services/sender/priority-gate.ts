/**
 * An in-process queue of sends waiting for one rate limit's tokens, in front of the fleet-wide
 * counter: urgent waiters are served before normal ones (FIFO within each), and one pump per gate
 * asks Redis for tokens only when someone is waiting — for as many tokens as there are waiters, in
 * one call (the counter grants what the current window still holds) — and, when the window is
 * used up, sleeps until the next one. A thousand waiters cost one Redis call per window, not one
 * per token (one per token capped the rate at 1 / round trip: tens per second on a busy Redis).
 *
 * A waiter has a deadline (now + the longest in-process wait). It is turned away with a
 * ThrottledError — re-tiered by the stage worker without counting an attempt — as soon as it is
 * clear it cannot be served in time: on arrival, when the queue ahead of it would take longer than
 * that at the pace tokens have been arriving here; and whenever the counter says the next token is
 * further away than its deadline (a full window, or the provider's penalty).
 *
 * The pace is measured from grant to grant while waiters were queued all along: the time since the
 * previous grant divided by the tokens of this one. A gap that ran through a provider penalty is not
 * a pace (the penalty's end is known and counted on its own), and neither is one that began while
 * the queue was empty.
 *
 * Priority holds within this process only. Replicas take tokens from the shared counter
 * independently, so a normal send on replica A can take the token an urgent send on replica B was
 * waiting for; B's urgent sends still go before B's own normal sends, and urgent messages all come
 * through the one urgent queue whose consumers outrank the shard consumers.
 */
import { ThrottledError } from '../../shared/failures/errors.js';
import { throttled } from '../../shared/failures/classify.js';

/**
 * What one try at the shared counter says: `count` tokens (1..wanted, default 1, with a way to give some back;
 * `nextInMs` when the window ran out before `wanted`: the next window's tokens come in that many ms),
 * or none and how long to wait (`penalty`: the provider's pause, not the pace of the limit).
 */
export type GateTake =
  { ok: true; count?: number; release: (count?: number) => Promise<void>; nextInMs?: number } | { ok: false; waitMs: number; penalty?: boolean };

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
  /** Takes up to `wanted` (≥ 1) tokens. */
  take: (wanted: number) => Promise<GateTake>;
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

/** Weight of the newest grant in the moving average of the time per token. */
const EMA_WEIGHT = 0.2;

export class PriorityGate {
  private readonly urgent: Waiter[] = [];
  private readonly normal: Waiter[] = [];
  private pumping = false;
  private wake: { at: number; timer: NodeJS.Timeout; done: () => void } | null = null;
  /** Moving average of ms per token granted while others were waiting: the local pace of this limit. */
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
          r = await this.opts.take(this.size);
        } catch (err) {
          this.failAll(err);
          break;
        }
        if (r.ok) {
          this.grant(r);
          // The window ran out: nobody else here gets a token before the next one.
          if (r.nextInMs !== undefined && this.size > 0) await this.refused(r.nextInMs, false);
          continue;
        }
        await this.refused(r.waitMs, r.penalty === true);
      }
    } finally {
      this.pumping = false;
      if (this.size === 0) this.opts.onIdle?.();
    }
  }

  /** The counter has no token for `waitMs`: turn away who cannot wait that long, sleep for the rest. */
  private async refused(waitMs: number, penalty: boolean): Promise<void> {
    for (const w of this.urgent) w.waited = true;
    for (const w of this.normal) w.waited = true;
    // A provider pause says nothing about the pace of the limit: do not measure across it.
    if (penalty) this.busyAtLastGrant = false;
    this.expire(this.opts.now() + waitMs, waitMs);
    if (this.size > 0 && !this.closed) await this.sleep(waitMs);
  }

  private grant(r: Extract<GateTake, { ok: true }>): void {
    const now = this.opts.now();
    const count = r.count ?? 1;
    let granted = 0;
    for (; granted < count; granted++) {
      const w = this.urgent.shift() ?? this.normal.shift();
      if (!w) break;
      w.resolve({ release: () => r.release(1), waited: w.waited, waitedMs: now - w.since });
    }
    // Waiters that left while the tokens were on their way: hand theirs back for others.
    if (granted < count) void r.release(count - granted).catch(() => {});
    if (granted === 0) return;
    if (this.busyAtLastGrant) {
      const perToken = (now - this.lastGrantAt) / granted;
      this.paceMs = this.paceMs === 0 ? perToken : this.paceMs * (1 - EMA_WEIGHT) + perToken * EMA_WEIGHT;
    }
    this.lastGrantAt = now;
    this.busyAtLastGrant = this.size > 0;
  }

  /** Turns away the waiters whose deadline comes before `horizon`. */
  private expire(horizon: number, minWaitMs: number): void {
    for (const queue of [this.urgent, this.normal]) {
      for (let i = 0; i < queue.length;) {
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
      w.reject(
        new ThrottledError(`rate limit ${this.opts.limit}: counter unavailable (${(err as Error)?.message ?? err})`, {
          code: 'limit-unavailable',
          retryAfterMs: 1000,
          cause: err,
        }),
      );
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
