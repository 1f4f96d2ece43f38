/**
 * One pass over the DLQ: the work of a replay or purge job.
 *
 * **The snapshot.** When a job begins, it puts a marker message at the DLQ's tail. The pass
 * consumes from the head until it meets its own marker, so it handles exactly what was in the DLQ
 * when the job began, and new dead letters (which arrive behind the marker) are left for later. A
 * marker, unlike a message count taken at the start, stays right across a crash and a resume, and
 * is not fooled by duplicates or by deliveries someone else took meanwhile.
 *
 * **Order.** Matching dead letters are republished to their origin (confirmed) and then acked.
 * Non-matching ones must stay, in their order. A quorum queue gives a nack(requeue)d message back
 * at the *head*, so the pass would get it again at once (and its delivery count would grow);
 * holding them all unacked until the end would need an unbounded prefetch and runs into the
 * broker's consumer timeout (30 min by default) on a slow replay. So the pass moves each kept dead
 * letter to the tail (publish to the DLQ, confirmed, then ack). After the pass the kept ones are in
 * their old relative order; dead letters that arrived during the pass stay in theirs, and the two
 * groups may interleave. Replayed messages are published one at a time in DLQ order, so each
 * user's messages reach their shard in the order they died.
 *
 * **Crash safety.** See pass-state.ts: a message handled but not yet acked when the replayer dies
 * comes back to the head (a closed channel returns its deliveries in order) and is recognised.
 */
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../../shared/platform/logger.js';
import type { ReplayerMetrics } from './metrics.js';
import type { DeadLetterHolds, Resolution } from '../../shared/stage/dead-letter-holds.js';
import { ConfirmPublisher, DeliveryStream } from './amqp-io.js';
import { decodeDeadLetter, markerOf, ROTATED_BY_HEADER, type DeadLetter } from './dead-letter.js';
import { matches, type DlqFilter } from './filter.js';
import { heldDeadLetter } from './held-wait.js';
import type { LaneIndex } from './lanes.js';
import { queueDepth, waitForDepth } from './reader.js';
import { keptCopy, replayMessage } from './replay-message.js';
import type { Counter, PassCounters, PassState } from './pass-state.js';
import type { ReplayThrottle } from './throttle.js';

/** How long the pass waits for a delivery before it checks whether its marker is still there. */
const IDLE_MS = 2000;

export interface PassPlan {
  jobId: string;
  passId: string;
  action: 'replay' | 'purge';
  filter: DlqFilter;
  limit: number | null;
}

export interface PassContext {
  conn: ChannelModel;
  dlq: string;
  /** The pass's subscription to the DLQ, named after the replica (shared/platform/replica.ts). */
  consumerTag: string;
  lanes: LaneIndex;
  state: PassState;
  prefetch: number;
  publishTimeoutMs: number;
  throttle: ReplayThrottle;
  log: Logger;
  metrics: ReplayerMetrics;
  /** Users waiting behind a dead letter (DLQ_ORDERING_MODE=strict): a replay or purge ends the wait. */
  holds: DeadLetterHolds;
  /** Move everything to the tail from now on (the job was cancelled, or this finishes an orphan's pass). */
  keepOnly(): Promise<boolean>;
  /** The replayer is shutting down: let go of the DLQ now; the job resumes elsewhere. */
  stopping(): boolean;
  onProgress(counters: PassCounters): void;
}

/** marker: the snapshot is done. marker-missing: someone removed it. paused: lanes busy. stopped: shutdown. */
export type PassEnd = 'marker' | 'marker-missing' | 'paused' | 'stopped';

type Step = 'next' | PassEnd;

export class DlqPass {
  private ch: ConfirmChannel | null = null;
  private publisher: ConfirmPublisher | null = null;
  private acked = 0;

  constructor(
    private readonly ctx: PassContext,
    private readonly plan: PassPlan,
    private readonly counters: PassCounters,
  ) {}

  /** Runs until the marker (or a pause/stop); unacked deliveries go back to the head in order. */
  async run(): Promise<PassEnd> {
    const stream = new DeliveryStream();
    const ch = await this.ctx.conn.createConfirmChannel();
    this.ch = ch;
    ch.on('error', (err: Error) => stream.fail(err));
    ch.on('close', () => stream.fail(new Error(`the channel consuming ${this.ctx.dlq} was closed`)));
    this.publisher = new ConfirmPublisher(ch, this.ctx.publishTimeoutMs);
    let end: PassEnd | null = null;
    try {
      await ch.prefetch(Math.max(1, this.ctx.prefetch));
      await ch.consume(this.ctx.dlq, (msg) => stream.push(msg), { noAck: false, consumerTag: this.ctx.consumerTag });
      while (end === null) {
        const msg = this.ctx.stopping() ? null : await stream.next(IDLE_MS);
        const step = this.ctx.stopping() ? 'stopped' : msg ? await this.handle(msg) : await this.idle();
        if (step !== 'next') end = step;
      }
      return end;
    } finally {
      // On an error the channel is gone already (the broker returned everything); else let go of it.
      if (end) await this.letGo(ch, stream.received - this.acked);
      else await ch.close().catch(() => {});
    }
  }

  /**
   * Closes the channel, which gives back what it still holds (deliveries past the marker, or the
   * one held at a pause) to the head of the DLQ, in order — and waits until the broker has done so:
   * the queue takes them back asynchronously, and whoever reads the DLQ next (a pre-scan, the next
   * segment) must find them there.
   */
  private async letGo(ch: ConfirmChannel, held: number): Promise<void> {
    const ready = held > 0 ? await queueDepth(this.ctx.conn, this.ctx.dlq) : 0;
    await ch.close().catch(() => {});
    if (held > 0) await waitForDepth(this.ctx.conn, this.ctx.dlq, ready + held);
  }

  /** Nothing arrives: the marker is gone if the DLQ has nothing ready (someone purged it, say). */
  private async idle(): Promise<Step> {
    return (await queueDepth(this.ctx.conn, this.ctx.dlq)) === 0 ? 'marker-missing' : 'next';
  }

  private async handle(msg: ConsumeMessage): Promise<Step> {
    const marker = markerOf(msg);
    if (marker !== null) {
      // Ours ends the pass; another one is left over from a pass that ended without reaching it.
      this.ack(msg);
      return marker === this.plan.passId ? 'marker' : 'next';
    }
    // Our own kept copy before our marker: we went round the whole queue, the marker is gone.
    if (msg.properties.headers?.[ROTATED_BY_HEADER] === this.plan.passId) return 'marker-missing';
    const dl = decodeDeadLetter(msg, this.ctx.lanes);
    if (await this.ctx.state.seen(dl.key)) {
      await this.ctx.state.bump('duplicates');
      this.counters.duplicates++;
      this.count('duplicate');
      this.ack(msg);
      return 'next';
    }
    return this.decide(dl);
  }

  private async decide(dl: DeadLetter): Promise<Step> {
    if ((await this.ctx.keepOnly()) || !matches(this.plan.filter, dl)) return this.keep(dl, ['kept']);
    const acted = this.counters.replayed + this.counters.purged;
    if (this.plan.limit !== null && acted >= this.plan.limit) return this.keep(dl, ['matched', 'kept']);
    if (this.plan.action === 'purge') {
      await this.resolveWait(dl, 'discarded', Date.now());
      return this.settle(dl, 'done', ['matched', 'purged'], 'purged');
    }
    if (!dl.origin) return this.keep(dl, ['matched', 'unroutable', 'kept'], 'unroutable');
    return this.replay(dl);
  }

  private async replay(dl: DeadLetter): Promise<Step> {
    const go = await this.ctx.throttle.acquire(() => this.ctx.stopping());
    if (go !== 'go') return go === 'pause' ? 'paused' : 'stopped';
    const out = replayMessage(dl, this.plan.jobId);
    // Its user's wait turns into an ordinary hold before the copy can reach the shard, so that the
    // copy is processed as the head; undone if the copy does not go out.
    const stamp = Date.now();
    await this.resolveWait(dl, 'replayed', stamp);
    if ((await this.publisher!.publish(out)) === 'returned') {
      await this.resolveWait(dl, 'kept', stamp);
      this.ctx.log.warn({ messageId: dl.id, exchange: out.exchange }, 'replay unroutable (no queue bound); dead letter kept');
      return this.keep(dl, ['matched', 'unroutable', 'kept'], 'unroutable');
    }
    this.ctx.metrics.replayed.inc({ job: this.plan.jobId });
    return this.settle(dl, 'done', ['matched', 'replayed'], 'replayed');
  }

  private async resolveWait(dl: DeadLetter, action: Resolution, stamp: number): Promise<void> {
    const held = heldDeadLetter(dl);
    if (held && (await this.ctx.holds.resolve(held, action, stamp))) {
      this.ctx.log.info({ messageId: held.id, stage: held.stage, action }, 'dead letter a user waited for: wait ended');
    }
  }

  private async keep(dl: DeadLetter, counters: Counter[], outcome = 'kept'): Promise<Step> {
    if ((await this.publisher!.publish(keptCopy(dl, this.plan.passId, this.ctx.dlq))) === 'returned') {
      throw new Error(`the DLQ ${this.ctx.dlq} did not take back a kept dead letter`);
    }
    return this.settle(dl, 'kept', counters, outcome);
  }

  /** Records the dead letter as handled, then acks the DLQ copy (in that order: see pass-state.ts). */
  private async settle(dl: DeadLetter, set: 'done' | 'kept', counters: Counter[], outcome: string): Promise<Step> {
    if (await this.ctx.state.commit(set, dl.key, counters)) {
      this.counters.scanned++;
      for (const c of counters) this.counters[c]++;
    }
    this.ack(dl.msg);
    this.count(outcome);
    return 'next';
  }

  private ack(msg: ConsumeMessage): void {
    this.ch!.ack(msg);
    this.acked++;
  }

  private count(outcome: string): void {
    this.ctx.metrics.replayScanned.inc({ action: this.plan.action, outcome });
    this.ctx.onProgress(this.counters);
  }
}
