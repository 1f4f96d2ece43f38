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
  /** The pipeline figure and the peers': batches (the ingress's HTTP cost spread over many messages, as in the limit). */
  pipeline: LoadShape;
  /** One message per request, as most callers send (`--profile --singles` only). */
  singles: LoadShape;
  /** Signed webhooks, one user message each, `concurrency` in flight (batchSize unused). */
  inbound: LoadShape;
  /** Messages of each peer's burst (the burst's shape otherwise; the peers' consumers stopped). */
  peerBurst: number;
  latency: { durationMs: number; users: number };
  urgent: { backlog: number; count: number; users: number };
  burst: { count: number; batchSize: number; concurrency: number; users: number; maxAcceptMs: number; throughputPerSecond: number };
  /** Longest a phase may wait for deliveries before it fails. */
  drainTimeoutMs: number;
}

/** The sender's HTTP concurrency: its provider pool's connections (services/sender/provider-client.ts); the peers' prefetch / concurrency. */
export const SENDER_CONNECTIONS = 64;

export const FULL: Sizes = {
  name: 'full',
  runTimeoutMs: 30 * 60_000,
  hopTrials: 3,
  raw: { count: 100_000, window: 256, prefetch: 256 },
  http: { count: 50_000 },
  pipeline: { warmup: 5_000, count: 50_000, users: 10_000, concurrency: 8, batchSize: 50 },
  singles: { warmup: 1_000, count: 10_000, users: 10_000, concurrency: 32, batchSize: 1 },
  inbound: { warmup: 1_000, count: 10_000, users: 10_000, concurrency: 32, batchSize: 1 },
  peerBurst: 100_000,
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
  pipeline: { warmup: 1_000, count: 10_000, users: 2_000, concurrency: 8, batchSize: 50 },
  singles: { warmup: 500, count: 3_000, users: 2_000, concurrency: 32, batchSize: 1 },
  inbound: { warmup: 300, count: 3_000, users: 2_000, concurrency: 32, batchSize: 1 },
  peerBurst: 20_000,
  latency: { durationMs: 10_000, users: 2_000 },
  urgent: { backlog: 40_000, count: 50, users: 50 },
  burst: { count: 20_000, batchSize: 500, concurrency: 2, users: 10_000, maxAcceptMs: 2 * 60_000, throughputPerSecond: 1000 },
  drainTimeoutMs: 3 * 60_000,
};
