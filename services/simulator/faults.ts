/**
 * Fault knobs of the simulator and the decision they make for each valid send: answer now, answer
 * with an error (a scripted rule, the random error mix, or a throttle), or accept and report a failure
 * later through the status webhook. Everything random draws from one seeded generator.
 */
import { z } from 'zod';
import { PAIR_RATE_LIMIT, THROUGHPUT_LIMIT, statusForCode } from './errors.js';
import { PairLimiter, RateWindow } from './limits.js';
import { pickWeighted, seededRandom, type Random } from './random.js';

export interface ErrorMixItem {
  status: number;
  code: number;
  weight?: number;
  message?: string;
  retryAfterS?: number;
}

export interface FaultRule {
  /** Matches this recipient only (exact `to`). */
  to?: string;
  /** Matches this `biz_opaque_callback_data` only (the envelope id). */
  id?: string;
  /** Answers left; removed at 0; -1 = forever. */
  times: number;
  /** The error to answer with; a rule without `code` accepts the send (with `latencyMs`: a slow answer). */
  status?: number;
  code?: number;
  message?: string;
  retryAfterS?: number;
  /** Answer after this many ms instead of the configured latency and jitter. */
  latencyMs?: number;
  /**
   * Accept the send (200 with a wamid) and report `code` later as a `failed` status webhook, the way
   * Meta reports e.g. 131026 and 131047 for messages it took. Needs `SimulatorOptions.webhook`.
   */
  async?: boolean;
}

export interface FaultConfig {
  latencyMs: number;
  jitterMs: number;
  errorRate: number;
  errorMix: ErrorMixItem[];
  rules: FaultRule[];
  throughputPerSecond: number;
  pairPerWindow: { count: number; windowMs: number } | null;
  down: boolean;
}

/** What the random error mix draws from when `errorMix` is left empty: transient errors only. */
export const DEFAULT_ERROR_MIX: readonly ErrorMixItem[] = [
  { status: statusForCode(THROUGHPUT_LIMIT), code: THROUGHPUT_LIMIT, weight: 2 },
  { status: 500, code: 131000, weight: 1 },
  { status: 503, code: 131016, weight: 1, retryAfterS: 1 },
];

export function defaultFaults(): FaultConfig {
  return {
    latencyMs: 0,
    jitterMs: 0,
    errorRate: 0,
    errorMix: [],
    rules: [],
    throughputPerSecond: 0,
    pairPerWindow: null,
    down: false,
  };
}

/** Top-level merge: a key present in `patch` replaces the current value (arrays included). */
export function mergeFaults(base: FaultConfig, patch: Partial<FaultConfig>): FaultConfig {
  const merged = { ...base };
  for (const [key, value] of Object.entries(patch) as Array<[keyof FaultConfig, unknown]>) {
    if (value !== undefined) (merged as Record<string, unknown>)[key] = structuredClone(value);
  }
  return merged;
}

/** Window sizes are ring buffers of this many timestamps; cap them so a typo cannot allocate gigabytes. */
const MAX_THROUGHPUT = 1_000_000;
const MAX_PAIR_COUNT = 10_000;

const count = z.number().int().min(0);
const ruleSchema = z
  .object({
    to: z.string().optional(),
    id: z.string().optional(),
    times: z.number().int().min(-1).default(1),
    status: z.number().int().min(100).max(599).optional(),
    code: z.number().int().optional(),
    message: z.string().optional(),
    retryAfterS: z.number().min(0).optional(),
    latencyMs: count.max(600_000).optional(),
    async: z.boolean().optional(),
  })
  .strict()
  .refine((r) => r.code !== undefined || r.latencyMs !== undefined, {
    message: 'a rule needs a code (an error) or a latencyMs (a slow answer)',
    path: ['code'],
  })
  .refine((r) => r.code !== undefined || (r.status === undefined && !r.async), { message: 'status and async need a code', path: ['code'] })
  .transform((r) => ({ ...r, status: r.status ?? (r.code === undefined ? undefined : statusForCode(r.code)) }));
const mixSchema = z
  .object({
    status: z.number().int().min(100).max(599).optional(),
    code: z.number().int(),
    weight: z.number().min(0).optional(),
    message: z.string().optional(),
    retryAfterS: z.number().min(0).optional(),
  })
  .strict()
  .transform((m) => ({ ...m, status: m.status ?? statusForCode(m.code) }));

/** Schema of a fault patch as sent to `PUT /_sim/faults`; `status` defaults to Meta's status for `code`. */
export const faultPatchSchema = z
  .object({
    latencyMs: count,
    jitterMs: count,
    errorRate: z.number().min(0).max(1),
    errorMix: z.array(mixSchema),
    rules: z.array(ruleSchema),
    throughputPerSecond: count.max(MAX_THROUGHPUT),
    pairPerWindow: z
      .object({ count: z.number().int().min(1).max(MAX_PAIR_COUNT), windowMs: z.number().int().min(1) })
      .strict()
      .nullable(),
    down: z.boolean(),
  })
  .strict()
  .partial();

/** `latencyMs`: a rule's own latency, in place of the configured latency and jitter. */
export type Decision = (
  | { kind: 'accept' }
  | { kind: 'accept-then-fail'; code: number; message?: string }
  | { kind: 'error'; status: number; code: number; message?: string; retryAfterS?: number }
) & { latencyMs?: number };

/** Holds the live fault configuration, its random generator and its throttle windows. */
export class FaultEngine {
  private config: FaultConfig;
  private random: Random;
  private throughput: RateWindow | null = null;
  private pairs: PairLimiter | null = null;

  constructor(
    private readonly initial: FaultConfig,
    private readonly seed: number,
  ) {
    this.config = mergeFaults(initial, {});
    this.random = seededRandom(seed);
    this.rebuildLimiters();
  }

  get current(): FaultConfig {
    return structuredClone(this.config);
  }

  get isDown(): boolean {
    return this.config.down;
  }

  set(patch: Partial<FaultConfig>): void {
    const before = this.config;
    this.config = mergeFaults(this.config, patch);
    const pair = (c: FaultConfig) => JSON.stringify(c.pairPerWindow);
    if (before.throughputPerSecond !== this.config.throughputPerSecond || pair(before) !== pair(this.config)) {
      this.rebuildLimiters();
    }
  }

  /** Back to the configuration the simulator started with, a fresh generator and empty windows. */
  reset(): void {
    this.config = mergeFaults(this.initial, {});
    this.random = seededRandom(this.seed);
    this.rebuildLimiters();
  }

  /** Extra time before answering: latency plus uniform jitter. */
  delayMs(): number {
    const { latencyMs, jitterMs } = this.config;
    return latencyMs + (jitterMs > 0 ? Math.floor(this.random() * (jitterMs + 1)) : 0);
  }

  /** Decides the answer to a valid send; an accepted send counts against the throttle windows. */
  decide(to: string, id: string | null, now: number): Decision {
    const rule = this.takeRule(to, id);
    const late = rule?.latencyMs === undefined ? {} : { latencyMs: rule.latencyMs };
    if (rule?.code !== undefined) {
      return rule.async
        ? { kind: 'accept-then-fail', code: rule.code, message: rule.message, ...late }
        : { kind: 'error', status: rule.status ?? statusForCode(rule.code), code: rule.code, message: rule.message, retryAfterS: rule.retryAfterS, ...late };
    }
    const decision = this.decideUnscripted(to, now);
    return { ...decision, ...late };
  }

  private decideUnscripted(to: string, now: number): Decision {
    if (this.config.errorRate > 0 && this.random() < this.config.errorRate) {
      const mix = this.config.errorMix.length > 0 ? this.config.errorMix : DEFAULT_ERROR_MIX;
      const item = pickWeighted(mix, this.random);
      if (item) return { kind: 'error', status: item.status, code: item.code, message: item.message, retryAfterS: item.retryAfterS };
    }
    if (this.throughput && !this.throughput.allows(now)) {
      return { kind: 'error', status: statusForCode(THROUGHPUT_LIMIT), code: THROUGHPUT_LIMIT };
    }
    if (this.pairs && !this.pairs.allows(to, now)) {
      return { kind: 'error', status: statusForCode(PAIR_RATE_LIMIT), code: PAIR_RATE_LIMIT };
    }
    this.throughput?.record(now);
    this.pairs?.record(to, now);
    return { kind: 'accept' };
  }

  /** The first rule that matches answers; its `times` goes down and it leaves the list at 0. */
  private takeRule(to: string, id: string | null): FaultRule | undefined {
    const rules = this.config.rules;
    const index = rules.findIndex((r) => r.times !== 0 && (r.to === undefined || r.to === to) && (r.id === undefined || r.id === id));
    if (index < 0) return undefined;
    const rule = rules[index];
    if (rule.times > 0) {
      rule.times -= 1;
      if (rule.times === 0) rules.splice(index, 1);
    }
    return rule;
  }

  private rebuildLimiters(): void {
    const { throughputPerSecond, pairPerWindow } = this.config;
    this.throughput = throughputPerSecond > 0 ? new RateWindow(Math.min(throughputPerSecond, MAX_THROUGHPUT), 1000) : null;
    this.pairs = pairPerWindow ? new PairLimiter(Math.min(pairPerWindow.count, MAX_PAIR_COUNT), pairPerWindow.windowMs) : null;
  }
}
