/**
 * The simulator's state, shared by its HTTP routes: options, fault engine, ledger, status webhooks,
 * and the answers waiting out their simulated latency (so `close()` can cancel them).
 */
import { randomBytes } from 'node:crypto';
import { defaultFaults, FaultEngine, mergeFaults, type FaultConfig } from './faults.js';
import { Ledger, type LedgerStats } from './ledger.js';
import { randomSeed } from './random.js';
import { StatusWebhooks, type WebhookOptions, type WebhookStats } from './webhook.js';
import { SimNumbers, type NumbersStats, type SimNumber } from './numbers.js';
import { Windows, type WindowRefusal } from './windows.js';

export interface CoreOptions {
  phoneNumberId?: string;
  accessToken?: string;
  /** Several business numbers, each with its own token and throughput (numbers.ts). */
  numbers?: SimNumber[];
  /** Messaging limits by portfolio: distinct users per 24 h reached by business-initiated messages. */
  messagingLimits?: Record<string, number>;
  faults?: Partial<FaultConfig>;
  seed?: number;
  webhook?: WebhookOptions;
  keepBodies?: boolean;
  clock?: () => number;
}

export interface SimulatorStats extends LedgerStats {
  /** The seed of the random error mix and jitter: pass it back to replay a run. */
  seed: number;
  webhooks: WebhookStats | null;
  numbers: NumbersStats;
}

export class SimulatorCore {
  readonly faults: FaultEngine;
  readonly ledger: Ledger;
  readonly webhooks: StatusWebhooks | null;
  readonly windows = new Windows();
  readonly numbers: SimNumbers;
  /** The clock: the given one (or the wall clock) plus what `advanceClock` added. */
  readonly now: () => number;
  private clockOffsetMs = 0;
  readonly seed: number;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(readonly options: CoreOptions) {
    this.seed = options.seed ?? randomSeed();
    this.faults = new FaultEngine(mergeFaults(defaultFaults(), options.faults ?? {}), this.seed);
    this.ledger = new Ledger(options.keepBodies ?? true, randomBytes(6).toString('hex'));
    this.webhooks = options.webhook ? new StatusWebhooks(options.webhook) : null;
    this.numbers = new SimNumbers(options.numbers, options.messagingLimits);
    const clock = options.clock ?? Date.now;
    this.now = () => clock() + this.clockOffsetMs;
  }

  /** Moves the simulator's clock forward (throttle windows, customer-service windows, `receivedAt`). */
  advanceClock(ms: number): number {
    this.clockOffsetMs += ms;
    return this.now();
  }

  /** Meta's 131047 for a free-form send to `to` from `phoneNumberId` outside its window (see windows.ts). */
  windowRefusal(phoneNumberId: string, to: string, type: string): WindowRefusal | null {
    return this.windows.refusal(phoneNumberId, to, type, this.now());
  }

  /** Runs `answer` after `latencyMs`, by default the configured latency and jitter (at once when 0). */
  later(answer: () => void, latencyMs?: number): void {
    const delay = latencyMs ?? this.faults.delayMs();
    if (delay <= 0) {
      answer();
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      answer();
    }, delay);
    this.timers.add(timer);
  }

  stats(): SimulatorStats {
    return { ...this.ledger.stats(), seed: this.seed, webhooks: this.webhooks?.stats() ?? null, numbers: this.numbers.stats(this.now()) };
  }

  reset(): void {
    this.ledger.clear();
    this.faults.reset();
    this.windows.clear();
    this.numbers.clear();
    this.clockOffsetMs = 0;
  }

  /** Cancels delayed answers and stops webhook delivery. */
  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await this.webhooks?.close();
  }
}
