/**
 * The dlq-replayer service: a BullMQ worker that runs replay and purge jobs (one at a time per
 * replica; the DLQ lock makes it one at a time in the fleet), the automatic replay policy, and
 * /metrics, /healthz, /readyz on METRICS_PORT.
 */
import { UnrecoverableError, Worker, type Job, type Queue } from 'bullmq';
import type { Config } from '../../shared/platform/config.js';
import { logOutages, type Logger } from '../../shared/platform/logger.js';
import { serveMetrics } from '../../shared/platform/metrics.js';
import { createRedis } from '../../shared/platform/redis.js';
import { createRuntime, type Runtime } from '../../shared/amqp/runtime.js';
import { ReplayerMetrics } from './metrics.js';
import { runSteps } from '../../shared/platform/shutdown.js';
import { applyAutoPolicy } from './auto-policy.js';
import { dlqLock } from './dlq-lock.js';
import { JobRun, type ReplayerContext } from './job-run.js';
import { admitJob, JobRefusedError, jobKeys } from './job-signature.js';
import { bullPrefix, openReplayQueue, REPLAY_QUEUE, type ReplayJobData, type ReplayResult } from './jobs.js';
import { LaneIndex } from './lanes.js';
import { BacklogGate } from './throttle.js';

export interface Replayer {
  rt: Runtime<ReplayerMetrics>;
  queue: Queue<ReplayJobData, ReplayResult>;
  metricsPort: number;
  close(): Promise<void>;
}

function startWorker(cfg: Config, ctx: ReplayerContext, log: Logger) {
  // BullMQ's worker blocks on Redis and must not give up on a request (maxRetriesPerRequest null).
  const connection = createRedis(cfg, { maxRetriesPerRequest: null });
  logOutages(log, 'replay worker redis', connection, connection);
  const keys = jobKeys(cfg.replayJobKey);
  const worker = new Worker<ReplayJobData, ReplayResult>(
    REPLAY_QUEUE,
    async (job: Job<ReplayJobData, ReplayResult>, token?: string) => {
      await admitJob(job, keys, ctx.rt.redis, ctx.rt.keys, log);
      return new JobRun(ctx, job, token).run();
    },
    {
      connection,
      prefix: bullPrefix(cfg),
      concurrency: 1,
      lockDuration: cfg.replayLockMs,
      stalledInterval: cfg.replayLockMs,
      maxStalledCount: 10,
    },
  );
  worker.on('failed', (job, err) => {
    log.warn({ job: job?.id, err: err.message }, 'replay job failed');
    // A cancellation (UnrecoverableError) was counted by the job itself.
    if (err instanceof JobRefusedError) ctx.rt.metrics.replayJobs.inc({ action: 'unknown', outcome: 'refused' });
    else if (!(err instanceof UnrecoverableError)) ctx.rt.metrics.replayJobs.inc({ action: job?.data.action ?? 'unknown', outcome: 'failed' });
  });
  // The worker re-emits its connection's errors: logged as an outage too, ended by the same 'ready'.
  logOutages(log, 'replay worker', worker, connection);
  return { worker, connection };
}

/** Least length of each REPLAY_JOB_KEY in production: 32 characters (e.g. `openssl rand -hex 32` gives 64). */
const MIN_JOB_KEY_LENGTH = 32;

/** In production a replayer without a real signing key would run anybody's jobs: refuse to start. */
export function checkJobKey(cfg: Pick<Config, 'env' | 'replayJobKey'>): void {
  if (cfg.env !== 'production') return;
  const keys = jobKeys(cfg.replayJobKey);
  if (keys.length === 0 || keys.some((k) => k.length < MIN_JOB_KEY_LENGTH)) {
    throw new Error(
      `REPLAY_JOB_KEY must be set in production (each key at least ${MIN_JOB_KEY_LENGTH} characters), the same in the replayer and the postmaster-dlq CLI`,
    );
  }
}

export async function startReplayer(cfg: Config, opts: { logger?: Logger } = {}): Promise<Replayer> {
  checkJobKey(cfg);
  const rt = await createRuntime(cfg, { service: 'dlq-replayer', metrics: ReplayerMetrics, logger: opts.logger });
  const log = rt.log.child({ component: 'dlq-replayer' });
  const queue = openReplayQueue(cfg, rt.redis);
  // As the ingress's scheduled-send queue: a warn line a minute at most during a Redis outage, not a
  // stack on stderr per error.
  logOutages(log, 'replay queue', queue, rt.redis);
  const lanes = new LaneIndex(rt.topology.names, rt.topology.options.shards);
  const gate = new BacklogGate(() => rt.broker.connection(), lanes.liveQueues(cfg.shards), cfg.replayBacklogThreshold);
  let stopping = false;
  const ctx: ReplayerContext = { rt, queue, lock: dlqLock(rt.redis, rt.keys), lanes, gate, stopping: () => stopping };
  const { worker, connection } = startWorker(cfg, ctx, log);
  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= runSteps(log, [
      ['stop taking jobs', () => ((stopping = true), worker.close())],
      ['close backlog gate', () => gate.close()],
      ['close queue', () => queue.close()],
      ['stop metrics', () => metrics?.close()],
      ['close worker redis', () => connection.quit().catch(() => connection.disconnect())],
      ['close broker and redis', () => rt.close()],
    ]));
  let metrics: Awaited<ReturnType<typeof serveMetrics>> | undefined;
  try {
    await worker.waitUntilReady();
    await applyAutoPolicy(queue, cfg, log);
    metrics = await serveMetrics(
      rt.metrics,
      cfg.metricsPort,
      rt.health.add('service', () => (!closing && worker.isRunning() ? null : 'replay worker not running, or shutting down')),
    );
  } catch (err) {
    await close();
    throw err;
  }
  log.info({ prefetch: cfg.replayPrefetch, backlogThreshold: cfg.replayBacklogThreshold }, 'dlq-replayer ready');
  return { rt, queue, metricsPort: metrics.port, close };
}
