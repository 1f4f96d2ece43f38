/**
 * The automatic replay policy (off by default): every DLQ_AUTO_REPLAY_EVERY_MS a BullMQ job
 * scheduler enqueues a replay of the transient-class dead letters that failed more than
 * DLQ_AUTO_REPLAY_COOLDOWN_MS ago and were replayed fewer than DLQ_AUTO_REPLAY_MAX times
 * (`x-postmaster-replays`). After that many replays a dead letter waits for a human. A run that
 * finds nothing to replay ends after its read, without touching the DLQ.
 */
import type { Queue } from 'bullmq';
import type { Config } from '../../shared/platform/config.js';
import type { Logger } from '../../shared/platform/logger.js';
import { signJobData } from './job-signature.js';
import { JOB_OPTIONS, type ReplayJobData, type ReplayResult } from './jobs.js';

export const AUTO_REPLAY_SCHEDULER = 'auto-replay';

export function autoReplayData(cfg: Config): ReplayJobData {
  return {
    action: 'replay',
    filter: { classes: ['transient'], olderThanMs: cfg.dlqAutoReplayCooldownMs, replaysBelow: cfg.dlqAutoReplayMax },
    ratePerSecond: null,
    limit: null,
    auto: true,
    requestedBy: 'auto-policy',
    requestedAt: '',
  };
}

/** Creates, updates or removes the scheduler to match the configuration. */
export async function applyAutoPolicy(queue: Queue<ReplayJobData, ReplayResult>, cfg: Config, log: Logger): Promise<boolean> {
  const on = cfg.dlqAutoReplayCooldownMs > 0 && cfg.dlqAutoReplayMax > 0;
  if (!on) {
    await queue.removeJobScheduler(AUTO_REPLAY_SCHEDULER);
    return false;
  }
  const every = Math.max(1000, cfg.dlqAutoReplayEveryMs);
  await queue.upsertJobScheduler(
    AUTO_REPLAY_SCHEDULER,
    { every },
    {
      name: AUTO_REPLAY_SCHEDULER,
      // Signed by the replayer itself (it holds the key too): the scheduler's jobs pass its own check.
      data: signJobData(autoReplayData(cfg), cfg.replayJobKey),
      opts: { attempts: JOB_OPTIONS.attempts, backoff: JOB_OPTIONS.backoff, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
    },
  );
  log.info({ everyMs: every, cooldownMs: cfg.dlqAutoReplayCooldownMs, max: cfg.dlqAutoReplayMax }, 'automatic replay of transient dead letters is on');
  return true;
}
