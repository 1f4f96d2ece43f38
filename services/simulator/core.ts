/**
 * The simulator's state, shared by its HTTP routes: options, fault engine, ledger, status webhooks,
 * and the answers waiting out their simulated latency (so `close()` can cancel them).
 */
import { randomBytes } from 'node:crypto';
import { defaultFaults, FaultEngine, mergeFaults, type FaultConfig } from './faults.js';
import { Ledger, type LedgerStats } from './ledger.js';
import { randomSeed } from './random.js';
import { StatusWebhooks, type WebhookOptions, type WebhookStats } from './webhook.js';

export interface CoreOptions {
  phoneNumberId?: string;
  accessToken?: string;
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
}

export class SimulatorCore {
  readonly faults: FaultEngine;
  readonly ledger: Ledger;
  readonly webhooks: StatusWebhooks | null;
  readonly now: () => number;
  readonly seed: number;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(readonly options: CoreOptions) {
    this.seed = options.seed ?? randomSeed();
    this.faults = new FaultEngine(mergeFaults(defaultFaults(), options.faults ?? {}), this.seed);
    this.ledger = new Ledger(options.keepBodies ?? true, randomBytes(6).toString('hex'));
    this.webhooks = options.webhook ? new StatusWebhooks(options.webhook) : null;
    this.now = options.clock ?? Date.now;
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
    return { ...this.ledger.stats(), seed: this.seed, webhooks: this.webhooks?.stats() ?? null };
  }

  reset(): void {
    this.ledger.clear();
    this.faults.reset();
  }

  /** Cancels delayed answers and stops webhook delivery. */
  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await this.webhooks?.close();
  }
}
