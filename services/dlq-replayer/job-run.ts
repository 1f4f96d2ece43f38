/**
 * One run of a replay or purge job in the dlq-replayer: take the DLQ lock, finish an orphaned pass
 * if there is one, count what matches (nothing → done at once, the DLQ untouched), put the marker at
 * the tail, run the pass (in segments when the live lanes are busy), report progress, release.
 *
 * A run can end early and be resumed, by this replica or another, with nothing lost or done twice:
 * - the replayer dies: BullMQ's stalled-job check gives the job to another worker after
 *   REPLAY_LOCK_MS; the pass state in Redis (pass-state.ts) tells it where it was;
 * - the replayer shuts down (SIGTERM): the job is moved back to the queue at once;
 * - the DLQ lock is held by a reader or by another job that will run again: the job waits (delayed).
 */
import { randomBytes } from 'node:crypto';
import { DelayedError, UnrecoverableError, type Job, type Queue } from 'bullmq';
import type { Logger } from '../../shared/platform/logger.js';
import type { Runtime } from '../../shared/amqp/runtime.js';
import type { ReplayerMetrics } from './metrics.js';
import { DeadLetterHolds, holdTtlMs } from '../../shared/stage/dead-letter-holds.js';
import type { DlqLock } from './dlq-lock.js';
import { matches } from './filter.js';
import { findJob, isFinalState, type ReplayJobData, type ReplayPhase, type ReplayProgress, type ReplayResult } from './jobs.js';
import type { LaneIndex } from './lanes.js';
import { DlqPass, type PassContext, type PassEnd, type PassPlan } from './pass.js';
import { PassState, type PassCounters, type PassRecord } from './pass-state.js';
import { queueDepth, readDeadLetters } from './reader.js';
import { markerMessage } from './replay-message.js';
import { BacklogGate, ReplayThrottle, TokenBucket, type WaitReason } from './throttle.js';

const PROGRESS_EVERY_MS = 250;
const CANCEL_CHECK_MS = 500;
const LOCK_RETRY_MS = 1000;
/** Longest a pass holds a delivery while the lanes are busy before it lets go of the DLQ. */
const MAX_HOLD_MS = 60_000;

export interface ReplayerContext {
  rt: Runtime<ReplayerMetrics>;
  queue: Queue<ReplayJobData, ReplayResult>;
  lock: DlqLock;
  lanes: LaneIndex;
  gate: BacklogGate;
  stopping(): boolean;
}

export class JobRun {
  private readonly id: string;
  private readonly state: PassState;
  private readonly log: Logger;
  private readonly throttle: ReplayThrottle;
  private readonly holds: DeadLetterHolds;
  private counters!: PassCounters;
  private phase: ReplayPhase = 'starting';
  private waiting: WaitReason | null = null;
  private reportedAt = 0;
  private cancelSeen = false;
  private cancelCheckedAt = 0;

  constructor(
    private readonly ctx: ReplayerContext,
    private readonly job: Job<ReplayJobData, ReplayResult>,
    private readonly token: string | undefined,
  ) {
    this.id = String(job.id);
    this.state = new PassState(ctx.rt.redis, ctx.rt.keys, this.id);
    this.log = ctx.rt.log.child({ component: 'replay-job', job: this.id, action: job.data.action });
    this.holds = new DeadLetterHolds(ctx.rt.redis, ctx.rt.keys, holdTtlMs(ctx.rt.topology.options.retryTiersMs, ctx.rt.cfg.holdGraceMs));
    const purge = job.data.action === 'purge';
    const rate = purge ? 0 : (job.data.ratePerSecond ?? ctx.rt.cfg.replayRatePerSecond);
    const gate = purge ? new BacklogGate(() => ctx.rt.broker.connection(), [], 0) : ctx.gate;
    this.throttle = new ReplayThrottle(new TokenBucket(rate), gate, ctx.rt.metrics, {
      maxHoldMs: MAX_HOLD_MS,
      onWait: (reason) => ((this.waiting = reason), this.report()),
    });
  }

  async run(): Promise<ReplayResult> {
    let rec = await this.state.load();
    this.counters = rec;
    if (!rec.passId && (await this.state.cancelled())) throw new UnrecoverableError('cancelled before it started');
    const lock = await this.ctx.lock.acquireForJob(this.id, (holder) => this.isFinished(holder));
    if (lock.kind === 'busy') return this.postpone('waiting-for-dlq', Date.now() + LOCK_RETRY_MS);
    const orphan = lock.kind === 'adopt' ? lock.orphan : rec.orphan;
    if (lock.kind === 'adopt') await this.state.adopt(lock.orphan);
    if (orphan) await this.finishOrphan(orphan);
    if (!rec.passId) {
      const matched = await this.prescan();
      if (await this.cancelled()) return this.end('cancelled', null);
      if (matched === 0) return this.end('empty', null);
      rec = await this.begin();
    }
    const end = await this.passUntilDone(this.state, this.plan(rec.passId!), this.counters, () => this.cancelled());
    return this.end((await this.cancelled()) ? 'cancelled' : 'completed', end);
  }

  private plan(passId: string): PassPlan {
    const d = this.job.data;
    return { jobId: this.id, passId, action: d.action, filter: d.filter ?? {}, limit: d.limit ?? null };
  }

  private async isFinished(jobId: string): Promise<boolean> {
    const job = await findJob(this.ctx.queue, jobId);
    return !job || isFinalState(await job.getState());
  }

  /** Back to the queue (delayed until `at`); BullMQ runs the job again then. */
  private async postpone(phase: ReplayPhase, at: number): Promise<never> {
    this.report(phase, true);
    await this.job.moveToDelayed(at, this.token);
    throw new DelayedError();
  }

  /** Counts the dead letters that match, without touching the DLQ. */
  private async prescan(): Promise<number> {
    const { filter } = this.job.data;
    let matched = 0;
    const now = Date.now();
    await readDeadLetters(this.ctx.rt.broker.connection(), this.ctx.rt.topology.names.dlq, this.ctx.lanes, (dl) => {
      if (matches(filter ?? {}, dl, now)) matched++;
    });
    return matched;
  }

  /** The marker goes in first, then the state: a crash between leaves a stray marker, which later passes drop. */
  private async begin(): Promise<PassRecord> {
    const conn = this.ctx.rt.broker.connection();
    const dlq = this.ctx.rt.topology.names.dlq;
    const passId = `${this.id}.${randomBytes(4).toString('hex')}`;
    const total = await queueDepth(conn, dlq);
    const ch = await conn.createConfirmChannel();
    try {
      const m = markerMessage(passId, this.id, dlq);
      ch.publish(m.exchange, m.routingKey, m.content, m.options);
      await ch.waitForConfirms();
    } finally {
      await ch.close().catch(() => {});
    }
    await this.state.begin(passId, total);
    this.log.info({ passId, total, filter: this.job.data.filter }, 'pass begins');
    const rec = await this.state.load();
    this.counters = rec;
    return rec;
  }

  /**
   * A job that ended (failed for good, or was removed) in the middle of its pass left part of the
   * DLQ moved to the tail. Moving the rest of its snapshot behind it restores the order.
   */
  private async finishOrphan(orphanId: string): Promise<void> {
    const orphan = new PassState(this.ctx.rt.redis, this.ctx.rt.keys, orphanId);
    const rec = await orphan.load();
    if (!rec.passId || rec.finished) return;
    this.log.warn({ orphan: orphanId }, 'finishing the pass of a job that ended without completing it');
    this.phase = 'finishing-orphan';
    const plan: PassPlan = { jobId: orphanId, passId: rec.passId, action: 'replay', filter: {}, limit: null };
    await this.passUntilDone(orphan, plan, rec, async () => true);
  }

  private async passUntilDone(state: PassState, plan: PassPlan, counters: PassCounters, keepOnly: () => Promise<boolean>): Promise<PassEnd> {
    const stop = () => this.ctx.stopping();
    for (;;) {
      if (this.phase !== 'finishing-orphan') this.phase = 'passing';
      const end = await new DlqPass(this.passContext(state, keepOnly), plan, counters).run();
      if (end === 'marker' || end === 'marker-missing') {
        await state.finish();
        this.phase = 'passing';
        return end;
      }
      if (end === 'stopped') return this.postpone(this.phase, Date.now());
      this.log.info('live lanes busy: pass paused, DLQ released');
      this.report('paused', true);
      if (!(await this.throttle.lanesClear(stop))) return this.postpone('paused', Date.now());
    }
  }

  private passContext(state: PassState, keepOnly: () => Promise<boolean>): PassContext {
    const { rt } = this.ctx;
    return {
      conn: rt.broker.connection(),
      dlq: rt.topology.names.dlq,
      consumerTag: rt.broker.consumerTag(rt.topology.names.dlq),
      lanes: this.ctx.lanes,
      state,
      prefetch: rt.cfg.replayPrefetch,
      publishTimeoutMs: rt.cfg.publishTimeoutMs,
      throttle: this.throttle,
      log: this.log,
      metrics: rt.metrics,
      holds: this.holds,
      keepOnly,
      stopping: () => this.ctx.stopping(),
      onProgress: () => this.report(),
    };
  }

  private async cancelled(): Promise<boolean> {
    if (!this.cancelSeen && Date.now() - this.cancelCheckedAt >= CANCEL_CHECK_MS) {
      this.cancelCheckedAt = Date.now();
      this.cancelSeen = await this.state.cancelled();
      if (this.cancelSeen) this.log.warn('cancelled: keeping the rest of the snapshot in order');
    }
    return this.cancelSeen;
  }

  private async end(outcome: ReplayResult['outcome'], end: PassEnd | null): Promise<ReplayResult> {
    await this.ctx.lock.releaseJob(this.id);
    this.ctx.rt.metrics.replayJobs.inc({ action: this.job.data.action, outcome });
    this.report('done', true);
    this.log.info({ outcome, ...this.counters }, 'job ends');
    if (outcome === 'cancelled') {
      throw new UnrecoverableError(
        `cancelled by an operator after ${this.counters.replayed + this.counters.purged} dead letters; the rest stay in the DLQ in order`,
      );
    }
    return { ...this.counters, outcome, markerMissing: end === 'marker-missing' };
  }

  private report(phase?: ReplayPhase, force = false): void {
    if (phase) this.phase = phase;
    const now = Date.now();
    if (!force && now - this.reportedAt < PROGRESS_EVERY_MS) return;
    this.reportedAt = now;
    const c = this.counters;
    const progress: ReplayProgress = { ...pickCounters(c), phase: this.phase, waiting: this.waiting };
    this.ctx.rt.metrics.replayPassProgress.set(
      { action: this.job.data.action },
      this.phase === 'done' ? 0 : c.total > 0 ? Math.min(1, c.scanned / c.total) : 0,
    );
    this.job.updateProgress(progress).catch((err: Error) => this.log.warn({ err: err.message }, 'could not report progress'));
  }
}

function pickCounters(c: PassCounters): PassCounters {
  const { total, scanned, matched, replayed, purged, kept, unroutable, duplicates } = c;
  return { total, scanned, matched, replayed, purged, kept, unroutable, duplicates };
}
