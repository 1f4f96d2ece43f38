/**
 * A replay never delays live traffic: each republish first waits for the job's rate (a token
 * bucket) and for the live lanes to be below REPLAY_BACKLOG_THRESHOLD ready messages.
 *
 * The backlog is read with passive queue.declare (`checkQueue`) on every shard and urgent queue:
 * exact and immediate, unlike the management API's counts, which lag by seconds. Reads are cached
 * for half a second, so a fast replay does not flood the broker with declares.
 */
import type { Channel, ChannelModel } from 'amqplib';
import type { ReplayerMetrics } from './metrics.js';

const BACKLOG_CACHE_MS = 500;
const BACKLOG_POLL_MS = 500;
const RATE_SLICE_MS = 250;

export type WaitReason = 'rate' | 'backlog';

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `rate` tokens per second, at most `burst` saved up; rate 0 = unlimited. */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();

  constructor(
    private readonly rate: number,
    private readonly burst = 1,
  ) {
    this.tokens = burst;
  }

  /** Takes a token and returns 0, or returns how many ms until one is due. */
  take(now = Date.now()): number {
    if (this.rate <= 0) return 0;
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) * 1000) / this.rate);
  }
}

/** Sum of ready messages in the live lanes, against a threshold (0 = off). */
export class BacklogGate {
  private cached: { at: number; depth: number } | null = null;
  private ch: Channel | null = null;

  constructor(
    private readonly conn: () => ChannelModel,
    private readonly queues: string[],
    readonly threshold: number,
  ) {}

  async depth(): Promise<number> {
    if (this.cached && Date.now() - this.cached.at < BACKLOG_CACHE_MS) return this.cached.depth;
    let depth = 0;
    for (const q of this.queues) depth += await this.depthOf(q);
    this.cached = { at: Date.now(), depth };
    return depth;
  }

  /** A missing queue (a shard count being changed) counts 0; its channel error kills only the throwaway channel. */
  private async depthOf(queue: string): Promise<number> {
    if (!this.ch) {
      const ch = await this.conn().createChannel();
      ch.on('error', () => {});
      ch.on('close', () => this.ch === ch && (this.ch = null));
      this.ch = ch;
    }
    try {
      return (await this.ch.checkQueue(queue)).messageCount;
    } catch {
      this.ch = null;
      return 0;
    }
  }

  async over(): Promise<boolean> {
    return this.threshold > 0 && (await this.depth()) > this.threshold;
  }

  async close(): Promise<void> {
    const ch = this.ch;
    this.ch = null;
    await ch?.close().catch(() => {});
  }
}

export interface ThrottleOptions {
  /** Longest a pass waits for the lanes while holding a delivery; then it pauses (and lets go of the DLQ). */
  maxHoldMs: number;
  onWait(reason: WaitReason | null): void;
}

export class ReplayThrottle {
  constructor(
    private readonly bucket: TokenBucket,
    readonly gate: BacklogGate,
    private readonly metrics: ReplayerMetrics,
    private readonly opts: ThrottleOptions,
  ) {}

  /** 'go' when the next replay may be published now; 'pause' when the lanes stayed busy too long. */
  async acquire(stop: () => boolean): Promise<'go' | 'pause' | 'stop'> {
    const started = Date.now();
    const lanesBusy = await this.waitFor('backlog', stop, async () =>
      Date.now() - started > this.opts.maxHoldMs ? 'give-up' : (await this.gate.over()) ? BACKLOG_POLL_MS : 0,
    );
    if (lanesBusy !== 'ok') return lanesBusy === 'give-up' ? 'pause' : 'stop';
    const rated = await this.waitFor('rate', stop, async () => Math.min(this.bucket.take(), RATE_SLICE_MS));
    return rated === 'ok' ? 'go' : 'stop';
  }

  /** Waits for the lanes only, without holding anything (between segments of a paused pass). */
  async lanesClear(stop: () => boolean): Promise<boolean> {
    return (await this.waitFor('backlog', stop, async () => ((await this.gate.over()) ? BACKLOG_POLL_MS : 0))) === 'ok';
  }

  /** Polls `check` (ms to wait, 0 = done) until done, stopped, or it gives up. */
  private async waitFor(reason: WaitReason, stop: () => boolean, check: () => Promise<number | 'give-up'>): Promise<'ok' | 'stop' | 'give-up'> {
    let slept = 0;
    try {
      for (let wait = await check(); wait !== 0; wait = await check()) {
        if (wait === 'give-up') return 'give-up';
        if (stop()) return 'stop';
        this.opts.onWait(reason);
        await sleep(wait);
        slept += wait;
      }
      return 'ok';
    } finally {
      if (slept > 0) {
        this.metrics.replayWaitSeconds.inc({ reason }, slept / 1000);
        this.opts.onWait(null);
      }
    }
  }
}
