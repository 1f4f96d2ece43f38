/**
 * Replay and purge jobs in BullMQ: the queue's name, what a job carries, how it is enqueued,
 * cancelled and shown. Shared by the CLI (producer) and the dlq-replayer (worker).
 *
 * The BullMQ queue is `replay` under the prefix `<REDIS_KEY_PREFIX>:<TOPOLOGY_PREFIX>`, so a second
 * fleet (or a test) on the same Redis has its own jobs.
 */
import { Queue, type Job, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../../shared/platform/config.js';
import type { Keyspace } from '../../shared/platform/redis.js';
import { describeFilter, type DlqFilter } from './filter.js';
import { emptyCounters, PassState, type PassCounters } from './pass-state.js';

export const REPLAY_QUEUE = 'replay';

export type ReplayAction = 'replay' | 'purge';

export interface ReplayJobData {
  action: ReplayAction;
  filter: DlqFilter;
  /** Replays per second; null: REPLAY_RATE_PER_SECOND. Purges are not throttled. */
  ratePerSecond: number | null;
  /** Replay (or purge) at most this many; null: all that match. */
  limit: number | null;
  /** Enqueued by the automatic policy rather than by an operator. */
  auto?: boolean;
  requestedBy: string;
  requestedAt: string;
  /** Unique per operator job, so a copy of its signed data is refused (job-signature.ts). */
  nonce?: string;
  /** HMAC of the rest of the data with REPLAY_JOB_KEY, made by the CLI (job-signature.ts). */
  signature?: string;
}

export type ReplayPhase = 'starting' | 'waiting-for-dlq' | 'finishing-orphan' | 'passing' | 'paused' | 'done';

export interface ReplayProgress extends PassCounters {
  phase: ReplayPhase;
  waiting: 'rate' | 'backlog' | null;
}

export interface ReplayResult extends PassCounters {
  outcome: 'completed' | 'empty' | 'cancelled';
  /** The marker was gone before the pass reached it (someone emptied the DLQ meanwhile). */
  markerMissing: boolean;
}

/** What `jobs`, `jobs status` and `--wait` show. */
export interface JobView {
  id: string;
  action: ReplayAction;
  auto: boolean;
  state: string;
  filter: string;
  ratePerSecond: number | null;
  limit: number | null;
  progress: ReplayProgress;
  result: ReplayResult | null;
  failedReason: string | null;
  requestedBy: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  attemptsMade: number;
}

export const JOB_OPTIONS: JobsOptions = {
  // Failures from a broker or Redis outage resume the pass where it stopped.
  attempts: 20,
  backoff: { type: 'fixed', delay: 3000 },
  removeOnComplete: { age: 7 * 24 * 3600, count: 1000 },
  removeOnFail: { age: 30 * 24 * 3600, count: 1000 },
};

export function bullPrefix(cfg: Pick<Config, 'redisKeyPrefix' | 'topologyPrefix'>): string {
  return `${cfg.redisKeyPrefix}:${cfg.topologyPrefix}`;
}

export function openReplayQueue(cfg: Config, connection: Redis): Queue<ReplayJobData, ReplayResult> {
  return new Queue<ReplayJobData, ReplayResult>(REPLAY_QUEUE, { connection, prefix: bullPrefix(cfg) });
}

export async function enqueue(queue: Queue<ReplayJobData, ReplayResult>, data: ReplayJobData): Promise<string> {
  const job = await queue.add(data.action, data, JOB_OPTIONS);
  return String(job.id);
}

function iso(ms: number | undefined): string | null {
  return ms ? new Date(ms).toISOString() : null;
}

function progressOf(job: Job<ReplayJobData, ReplayResult>): ReplayProgress {
  const p = job.progress;
  const base: ReplayProgress = { ...emptyCounters(), phase: 'starting', waiting: null };
  return p && typeof p === 'object' ? { ...base, ...(p as Partial<ReplayProgress>) } : base;
}

export async function viewJob(job: Job<ReplayJobData, ReplayResult>): Promise<JobView> {
  const d = job.data;
  return {
    id: String(job.id),
    action: d.action,
    auto: Boolean(d.auto),
    state: await job.getState(),
    filter: describeFilter(d.filter ?? {}),
    ratePerSecond: d.ratePerSecond,
    limit: d.limit,
    progress: progressOf(job),
    result: job.returnvalue ?? null,
    failedReason: job.failedReason || null,
    requestedBy: d.requestedBy,
    createdAt: new Date(job.timestamp).toISOString(),
    startedAt: iso(job.processedOn),
    finishedAt: iso(job.finishedOn),
    attemptsMade: job.attemptsMade,
  };
}

export async function findJob(queue: Queue<ReplayJobData, ReplayResult>, id: string): Promise<Job<ReplayJobData, ReplayResult> | null> {
  return ((await queue.getJob(id)) as Job<ReplayJobData, ReplayResult> | undefined) ?? null;
}

/** Newest first, every state. */
export async function listJobs(queue: Queue<ReplayJobData, ReplayResult>, limit: number): Promise<JobView[]> {
  const jobs = (await queue.getJobs(['active', 'waiting', 'delayed', 'prioritized', 'completed', 'failed'], 0, limit - 1)) as Array<
    Job<ReplayJobData, ReplayResult>
  >;
  const views = await Promise.all(jobs.filter(Boolean).map(viewJob));
  return views.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id, undefined, { numeric: true })).slice(0, limit);
}

export function isFinalState(state: string): boolean {
  return state === 'completed' || state === 'failed' || state === 'unknown';
}

/**
 * A job that has not started is removed. A running one is flagged: its pass stops replaying, moves
 * the rest of its snapshot to the tail (so the DLQ keeps its order), and the job fails as cancelled.
 */
export async function cancelJob(
  queue: Queue<ReplayJobData, ReplayResult>,
  redis: Redis,
  keys: Keyspace,
  id: string,
): Promise<'removed' | 'cancelling' | 'finished' | 'unknown'> {
  const job = await findJob(queue, id);
  if (!job) return 'unknown';
  const state = await job.getState();
  if (isFinalState(state)) return 'finished';
  await new PassState(redis, keys, id).cancel();
  if (state === 'waiting' || state === 'delayed' || state === 'prioritized') {
    const removed = await job.remove().then(
      () => true,
      () => false,
    );
    if (removed) return 'removed';
  }
  return 'cancelling';
}
