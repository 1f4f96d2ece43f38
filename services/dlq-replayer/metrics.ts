/**
 * The DLQ replayer's metrics, beside every service's (shared/platform/metrics.ts): replay and purge
 * jobs, their passes and waits, and the dead letters they republished.
 */
import { Counter, Gauge } from 'prom-client';
import { Metrics } from '../../shared/platform/metrics.js';

export class ReplayerMetrics extends Metrics {
  readonly replayed = new Counter({
    name: 'postmaster_replayed_total',
    help: 'Dead letters republished by replay jobs.',
    labelNames: ['job'],
    registers: [this.registry],
  });
  readonly replayScanned = new Counter({
    name: 'postmaster_replay_scanned_total',
    help: 'Dead letters a replay or purge pass went over, by outcome (replayed, purged, kept, duplicate, unroutable).',
    labelNames: ['action', 'outcome'],
    registers: [this.registry],
  });
  readonly replayWaitSeconds = new Counter({
    name: 'postmaster_replay_wait_seconds_total',
    help: 'Time replay jobs spent waiting: for their --rate (rate) or for the live lanes to drain (backlog).',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly replayJobs = new Counter({
    name: 'postmaster_replay_jobs_total',
    help: 'Replay and purge jobs finished, by outcome (completed, cancelled, failed, empty).',
    labelNames: ['action', 'outcome'],
    registers: [this.registry],
  });
  readonly replayPassProgress = new Gauge({
    name: 'postmaster_replay_pass_progress_ratio',
    help: 'Share of the DLQ snapshot the running pass has gone over (0 when none runs).',
    labelNames: ['action'],
    registers: [this.registry],
  });
}
