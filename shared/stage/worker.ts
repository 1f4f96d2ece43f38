/**
 * A stage worker (dispatcher or sender): consumes the stage's urgent lane and the shards this
 * replica owns, runs one user's messages strictly one at a time and in order (many users at once),
 * and turns every failure into a fate (retry tier or DLQ) before acking.
 */
import type { ConsumeMessage } from 'amqplib';
import { QueueConsumer } from '../consumer.js';
import { EnvelopeError, H, parseEnvelope, type Envelope } from '../envelope.js';
import { asClassified, PoisonMessageError, type ClassifiedError } from '../failures/errors.js';
import { decideFate } from '../failures/fate.js';
import { FailureRouter } from '../failures/router.js';
import type { Logger } from '../logger.js';
import type { Runtime } from '../runtime.js';
import { KeySequencer } from '../sequencer.js';
import { laneOf, type Lane, type Stage } from '../topology/names.js';
import { runSteps } from '../shutdown.js';
import { OrderingGuard } from './ordering.js';
import { StatusStore } from '../status.js';
import { StaticAssigner, type ShardAssigner } from './assigner.js';

export interface StageContext {
  lane: Lane;
  msg: ConsumeMessage;
  log: Logger;
}
export type StageHandler = (env: Envelope, ctx: StageContext) => Promise<void>;

export interface StageWorkerOptions {
  assigner?: ShardAssigner;
}

/** Urgent consumers outrank shard consumers on the broker (consumer priority). */
const URGENT_CONSUMER_PRIORITY = 10;

export class StageWorker {
  private readonly log: Logger;
  private readonly failures: FailureRouter;
  private readonly sequencer = new KeySequencer();
  private readonly shardConsumers = new Map<number, QueueConsumer>();
  private urgent: QueueConsumer | null = null;
  private readonly assigner: ShardAssigner;
  readonly ordering: OrderingGuard;
  private readonly status: StatusStore;
  private closing: Promise<void> | null = null;
  private started = false;

  constructor(
    private readonly rt: Runtime,
    readonly stage: Stage,
    private readonly handler: StageHandler,
    opts: StageWorkerOptions = {},
  ) {
    this.log = rt.log.child({ component: `${stage}-worker` });
    this.failures = new FailureRouter(rt.broker, rt.topology, rt.metrics);
    this.assigner = opts.assigner ?? new StaticAssigner(rt.topology.options.shards);
    this.ordering = new OrderingGuard(rt, stage);
    this.status = new StatusStore(rt);
  }

  async start(): Promise<void> {
    const { names } = this.rt.topology;
    this.urgent = new QueueConsumer(this.rt.broker, {
      queue: names.urgent(this.stage),
      prefetch: this.rt.cfg.urgentPrefetch,
      priority: URGENT_CONSUMER_PRIORITY,
      logger: this.log,
      handler: (msg) => this.onDelivery(msg, laneOf(this.stage, 'urgent')),
    });
    await this.urgent.start();
    await this.assigner.start({
      acquire: (shard) => this.startShard(shard),
      release: (shard) => this.stopShard(shard),
    });
    this.started = true;
  }

  ready(): boolean {
    return this.started && !this.closing && this.rt.broker.connected();
  }

  ownedShards(): number[] {
    return [...this.shardConsumers.keys()].sort((a, b) => a - b);
  }

  private async startShard(shard: number): Promise<void> {
    if (this.shardConsumers.has(shard)) return;
    await this.ordering.loadShard(shard);
    const c = new QueueConsumer(this.rt.broker, {
      queue: this.rt.topology.names.shardQueue(this.stage, shard),
      prefetch: this.rt.cfg.shardPrefetch,
      logger: this.log,
      handler: (msg) => this.onDelivery(msg, laneOf(this.stage, 'ordered'), shard),
    });
    this.shardConsumers.set(shard, c);
    await c.start();
    this.rt.metrics.shardsOwned.set({ stage: this.stage }, this.shardConsumers.size);
  }

  /** Stops consuming a shard after everything it handed out is finished and acked (the fence). */
  private async stopShard(shard: number): Promise<void> {
    const c = this.shardConsumers.get(shard);
    if (!c) return;
    await c.stop(this.rt.cfg.shutdownGraceMs);
    this.shardConsumers.delete(shard);
    this.ordering.unloadShard(shard);
    this.rt.metrics.shardsOwned.set({ stage: this.stage }, this.shardConsumers.size);
  }

  private onDelivery(msg: ConsumeMessage, lane: Lane, shard?: number): Promise<void> {
    this.rt.metrics.consumed.inc({ stage: this.stage, lane });
    let env: Envelope;
    try {
      env = parseEnvelope(msg.content);
    } catch (err) {
      const e = err as EnvelopeError;
      const poison = new PoisonMessageError(`invalid envelope: ${e.message}`, { code: 'invalid-envelope', cause: err });
      return this.failures.apply(decideFate(poison, 0, this.tiers()), { msg, lane, envelope: null }, poison).then(() => {
        const id = msg.properties.messageId;
        if (id) this.recordDead(id, poison, { mustExist: true });
      });
    }
    if (shard === undefined) return this.process(msg, env, lane);
    return this.sequencer.run(env.user, () => this.process(msg, env, lane, shard));
  }

  private tiers(): number[] {
    return this.rt.topology.options.retryTiersMs;
  }

  private async process(msg: ConsumeMessage, env: Envelope, lane: Lane, shard?: number): Promise<void> {
    const ordered = shard !== undefined && this.rt.cfg.orderingMode === 'strict';
    if (ordered && (await this.ordering.mustWait(env, msg, shard))) {
      await this.ordering.park(env, msg, lane, this.failures, shard);
      return;
    }
    const attempt = Number(msg.properties.headers?.[H.attempt] ?? env.attempt ?? 0);
    const log = this.log.child({ messageId: env.id, correlationId: env.correlationId, lane });
    this.rt.metrics.inFlight.inc({ stage: this.stage });
    try {
      await this.handler({ ...env, attempt }, { lane, msg, log });
      if (ordered) await this.ordering.done(env, shard);
    } catch (err) {
      await this.fail(msg, env, lane, asClassified(err), attempt, ordered ? shard : undefined, log);
    } finally {
      this.rt.metrics.inFlight.dec({ stage: this.stage });
    }
  }

  private async fail(
    msg: ConsumeMessage,
    env: Envelope,
    lane: Lane,
    err: ClassifiedError,
    attempt: number,
    shard: number | undefined,
    log: Logger,
  ): Promise<void> {
    const fate = decideFate(err, attempt, this.tiers());
    log.warn({ class: err.failureClass, code: err.code, err: err.message, fate }, 'message failed');
    if (shard !== undefined && fate.action === 'retry') await this.ordering.hold(env, shard, fate.tierMs);
    await this.failures.apply(fate, { msg, lane, envelope: env }, err);
    if (fate.action === 'dead') {
      this.recordDead(env.id, err);
      if (shard !== undefined) await this.ordering.done(env, shard);
    }
  }

  /** Status records are advisory: a Redis hiccup must not fail the message. */
  private recordDead(id: string, err: ClassifiedError, extra: { mustExist?: boolean } = {}): void {
    this.status
      .record(id, 'dead-lettered', { ...extra, error: { code: err.code, message: err.message.slice(0, 500), class: err.failureClass } })
      .catch((e: Error) => this.log.warn({ err: e.message, messageId: id }, 'could not record the dead-lettered status'));
  }

  /** Stops intake, finishes in-flight work, releases shards. Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= runSteps(this.log, [
      ['stop urgent consumer', () => this.urgent?.stop(this.rt.cfg.shutdownGraceMs)],
      ['release shards', () => this.assigner.stop()],
    ]));
  }
}
