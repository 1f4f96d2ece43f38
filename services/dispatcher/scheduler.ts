/**
 * The scheduler: a BullMQ worker in the dispatcher that publishes each scheduled message to the
 * dispatch lanes when its `sendAt` comes. The job completes only after the broker confirmed the
 * publish (ack after confirm); a failed publish is retried with a capped backoff. Jobs live in Redis,
 * so they survive dispatcher restarts: any replica's scheduler picks up what is due. A crash between
 * the confirm and BullMQ marking the job done republishes it once: the same envelope id, which the
 * sender's dedup drops.
 */
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { envelopeSchema } from '../../shared/domain/envelope.js';
import { logOutages, type Logger } from '../../shared/platform/logger.js';
import { publishToStage } from '../../shared/amqp/publish.js';
import { createRedis } from '../../shared/platform/redis.js';
import type { Runtime } from '../../shared/amqp/runtime.js';
import type { DispatcherMetrics } from './metrics.js';
import { runSteps } from '../../shared/platform/shutdown.js';
import { FAILED_JOB_RETENTION_S, SCHEDULE_QUEUE, schedulePrefix, type ScheduledJob } from '../../shared/domain/schedule-queue.js';

const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 30_000;

/** 1 s, 2 s, 4 s … capped at 30 s. */
export function cappedBackoff(attemptsMade: number): number {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attemptsMade - 1));
}

export class Scheduler {
  private worker: Worker<ScheduledJob> | null = null;
  private connection: Redis | null = null;
  private readonly log: Logger;
  private closing: Promise<void> | null = null;

  constructor(private readonly rt: Runtime<DispatcherMetrics>) {
    this.log = rt.log.child({ component: 'scheduler' });
  }

  async start(): Promise<void> {
    // BullMQ's blocking connection must retry forever (maxRetriesPerRequest: null).
    this.connection = createRedis(this.rt.cfg, { maxRetriesPerRequest: null });
    logOutages(this.log, 'scheduler redis', this.connection, this.connection);
    this.worker = new Worker<ScheduledJob>(SCHEDULE_QUEUE, (job) => this.publish(job), {
      connection: this.connection,
      prefix: schedulePrefix(this.rt),
      concurrency: Math.max(1, this.rt.cfg.schedulerConcurrency),
      // Publishing takes at most PUBLISH_TIMEOUT_MS; a job that stalls lost its worker mid-publish.
      maxStalledCount: 100,
      settings: { backoffStrategy: (attemptsMade: number) => cappedBackoff(attemptsMade) },
      // A net for jobs whose own options leave removeOnFail out; the ingress's set it (SCHEDULED_JOB_OPTIONS).
      removeOnFail: { age: FAILED_JOB_RETENTION_S },
    });
    // The worker re-emits its connection's errors: logged as an outage too, ended by the same 'ready'.
    logOutages(this.log, 'scheduler', this.worker, this.connection);
    this.worker.on('failed', (job, err) =>
      this.log.warn({ messageId: job?.id, attempts: job?.attemptsMade, err: err.message }, 'scheduled publish failed; will retry'),
    );
    await this.worker.waitUntilReady();
  }

  private async publish(job: Job<ScheduledJob>): Promise<void> {
    const parsed = envelopeSchema.safeParse(job.data?.envelope);
    if (!parsed.success) {
      // Cannot happen for jobs the ingress added; kept as a failed job for an operator to look at.
      throw new UnrecoverableError(`scheduled job ${job.id} holds no valid envelope`);
    }
    const env = parsed.data;
    await publishToStage(this.rt, 'send', env);
    this.log.debug({ messageId: env.id, lateMs: Date.now() - Date.parse(env.sendAt ?? env.createdAt) }, 'scheduled message published');
  }

  /** Lets running publishes finish, then stops. Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= runSteps(this.log, [
      ['close scheduler worker', () => this.worker?.close()],
      ['close scheduler redis', () => this.connection?.quit().catch(() => this.connection?.disconnect())],
    ]));
  }
}
