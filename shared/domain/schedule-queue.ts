/**
 * The scheduled-send queue (BullMQ, delayed jobs): the ingress adds a message whose `sendAt` is in
 * the future, the dispatcher's scheduler publishes it to the dispatch lanes when it is due. This file
 * is the contract both sides share: the queue's name and prefix, the job's shape and options.
 *
 * While it waits here, Redis holds the only copy of an accepted message — the one place in the fleet
 * where that is so. Production Redis must therefore persist (AOF) and must not evict
 * (`maxmemory-policy noeviction`); see docs/API.md. With REDIS_WAIT_REPLICAS, `add` also waits until
 * that many replicas have the jobs, so a failover of the primary right after the 202 keeps them
 * (docs/OPERATIONS.md, Redis Sentinel).
 */
import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Envelope } from './envelope.js';
import { waitForReplicas, type RedisContext } from '../platform/redis.js';

export const SCHEDULE_QUEUE = 'scheduled-sends';

/** BullMQ keys live under the fleet's Redis key prefix: `<REDIS_KEY_PREFIX>:<TOPOLOGY_PREFIX>:bullmq:scheduled-sends:…`. */
export function schedulePrefix(rt: Pick<RedisContext, 'keys'>): string {
  return rt.keys('bullmq');
}

export interface ScheduledJob {
  envelope: Envelope;
}

/**
 * How long a scheduled job that failed for good is kept for an operator to look at (its envelope
 * holds the user's number and text): 7 days, like a status record (STATUS_TTL_S). BullMQ removes
 * expired failed jobs when a later job of the queue fails, so this is a lower bound.
 */
export const FAILED_JOB_RETENTION_S = 7 * 24 * 3600;

/**
 * A due job whose publish fails (broker away) is retried with a capped backoff for days (10,000
 * attempts at most 30 s apart: about 3.5 days) rather than given up; a job that still fails is kept
 * FAILED_JOB_RETENTION_S for an operator, then removed.
 */
export const SCHEDULED_JOB_OPTIONS: JobsOptions = {
  attempts: 10_000,
  backoff: { type: 'capped' },
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: FAILED_JOB_RETENTION_S },
};

/** The producer side (ingress). */
export class ScheduledSends {
  readonly queue: Queue<ScheduledJob>;
  private closing: Promise<void> | null = null;

  constructor(private readonly rt: RedisContext) {
    // The runtime's connection is shared (not closed by BullMQ); adding never blocks it, except for
    // the WAIT of REDIS_WAIT_REPLICAS (a replica's round trip, at most REDIS_WAIT_TIMEOUT_MS).
    this.queue = new Queue<ScheduledJob>(SCHEDULE_QUEUE, { connection: rt.redis, prefix: schedulePrefix(rt) });
  }

  /**
   * Adds the envelopes as delayed jobs in one round trip (job id = envelope id, so adding twice is
   * harmless). Resolves once Redis has them — and REDIS_WAIT_REPLICAS replicas too: else it throws
   * ReplicaAckError (the jobs are on the primary; a failover may still lose them).
   */
  async add(envs: Envelope[]): Promise<void> {
    const now = Date.now();
    await this.queue.addBulk(
      envs.map((env) => ({
        name: 'send',
        data: { envelope: env },
        opts: { ...SCHEDULED_JOB_OPTIONS, jobId: env.id, delay: Math.max(0, Date.parse(env.sendAt ?? '') - now || 0) },
      })),
    );
    // On the connection that sent the add (WAIT counts up to this client's last write): the ioredis
    // client given to the Queue, which BullMQ types as its adapter interface.
    await waitForReplicas((await this.queue.getBackend().client) as unknown as Redis, this.rt.cfg, 'scheduled-send queue');
  }

  /** Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= this.queue.close().catch(() => {}));
  }
}
