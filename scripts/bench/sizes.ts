/**
 * How big each measurement is, in full and in --quick (everything scaled down, same shape), and the
 * time bounds that keep a run from hanging.
 */
export interface LoadShape {
  warmup: number;
  count: number;
  users: number;
  /** Requests in flight. */
  concurrency: number;
  /** Messages per request (1: POST /v1/messages, more: POST /v1/messages/batch). */
  batchSize: number;
}

export interface Sizes {
  name: 'full' | 'quick';
  /** Hard bound of the whole run; past it the run aborts, stops its processes and cleans up. */
  runTimeoutMs: number;
  /** Trials of each bare hop; the median counts. */
  hopTrials: number;
  raw: { count: number; window: number; prefetch: number };
  http: { count: number };
  bullmq: { count: number; window: number; concurrency: number };
  /** One broker hop at a low rate: `count` messages, one every `intervalMs`, Nagle on and off. */
  hopLatency: { count: number; intervalMs: number };
  /** The pipeline figure: batches (the ingress's HTTP cost spread over many messages, as in the limit). */
  pipeline: LoadShape;
  /** The same with one message per request, as most callers send. */
  singles: LoadShape;
  latency: { durationMs: number; users: number };
  urgent: { backlog: number; count: number; users: number };
  burst: { count: number; batchSize: number; concurrency: number; users: number; maxAcceptMs: number; throughputPerSecond: number };
  /** Longest a phase may wait for deliveries before it fails. */
  drainTimeoutMs: number;
}

/** The sender's HTTP concurrency: its provider pool's connections (services/sender/provider-client.ts). */
export const SENDER_CONNECTIONS = 64;

export const FULL: Sizes = {
  name: 'full',
  runTimeoutMs: 100 * 60_000,
  hopTrials: 3,
  raw: { count: 100_000, window: 256, prefetch: 256 },
  http: { count: 50_000 },
  bullmq: { count: 20_000, window: 256, concurrency: 256 },
  hopLatency: { count: 500, intervalMs: 10 },
  pipeline: { warmup: 5_000, count: 50_000, users: 10_000, concurrency: 8, batchSize: 50 },
  singles: { warmup: 1_000, count: 10_000, users: 10_000, concurrency: 32, batchSize: 1 },
  latency: { durationMs: 30_000, users: 10_000 },
  urgent: { backlog: 100_000, count: 200, users: 200 },
  burst: { count: 1_000_000, batchSize: 500, concurrency: 2, users: 100_000, maxAcceptMs: 50 * 60_000, throughputPerSecond: 1000 },
  drainTimeoutMs: 10 * 60_000,
};

export const QUICK: Sizes = {
  name: 'quick',
  runTimeoutMs: 12 * 60_000,
  hopTrials: 3,
  raw: { count: 20_000, window: 256, prefetch: 256 },
  http: { count: 10_000 },
  bullmq: { count: 5_000, window: 256, concurrency: 256 },
  hopLatency: { count: 200, intervalMs: 10 },
  pipeline: { warmup: 1_000, count: 10_000, users: 2_000, concurrency: 8, batchSize: 50 },
  singles: { warmup: 500, count: 3_000, users: 2_000, concurrency: 32, batchSize: 1 },
  latency: { durationMs: 10_000, users: 2_000 },
  urgent: { backlog: 15_000, count: 50, users: 50 },
  burst: { count: 20_000, batchSize: 500, concurrency: 2, users: 10_000, maxAcceptMs: 2 * 60_000, throughputPerSecond: 1000 },
  drainTimeoutMs: 3 * 60_000,
};
