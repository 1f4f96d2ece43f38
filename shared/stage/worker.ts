/**
 * A stage worker (dispatcher or sender): consumes the stage's urgent lane and the shards this
 * replica owns, runs one user's messages strictly one at a time and in order (many users at once),
 * and turns every failure into a fate (retry tier or DLQ) before acking.
 *
 * Two things are not the message's fault and never touch its fate: an outage of RabbitMQ or Redis
 * (the failed step is tried again in place, with backoff, while the delivery's channel lives — see
 * failures/outage.ts), and a delivery the broker has handed out DELIVERY_LIMIT times already
 * (earlier holders crashed or lost their channel while on it): that one is dead-lettered by the
 * worker as poison/delivery-limit, which also releases its user's strict-order hold — the broker's
 * own x-delivery-limit stays as the net, but a message it dead-letters would leave the hold behind.
 * A classic queue (the urgent lane by default) counts no deliveries: its redeliveries are counted in
 * Redis instead (failures/redeliveries.ts), to the same limit.
 */
import type { ConsumeMessage } from 'amqplib';
import { QueueConsumer, type Delivery } from '../consumer.js';
import { EnvelopeError, H, parseEnvelope, type Envelope } from '../envelope.js';
import { asClassified, PoisonMessageError, type ClassifiedError } from '../failures/errors.js';
import { decideFate } from '../failures/fate.js';
import { FailureRouter } from '../failures/router.js';
import { outageOf } from '../failures/outage.js';
import { RedeliveryCounter } from '../failures/redeliveries.js';
import { lazyChild, type Logger } from '../logger.js';
import type { Runtime } from '../runtime.js';
import { KeySequencer } from '../sequencer.js';
import { laneOf, type Lane, type Stage } from '../topology/names.js';
import { runSteps } from '../shutdown.js';
import { OrderingGuard } from './ordering.js';
import { StatusStore } from '../status.js';
import { StaticAssigner, type ShardAssigner } from './assigner.js';
import { UrgentFirst } from './urgent-first.js';
import { setTimeout as sleep } from 'node:timers/promises';

export interface StageContext {
  lane: Lane;
  msg: ConsumeMessage;
  log: Logger;
  /**
   * False once the delivery went back to its queue with its channel (a hand-over whose grace period
   * ran out, a lost connection): another consumer gets it, so a handler that waits (rate limits,
   * inline throttle retries) checks this before acting and throws DeliveryGone.
   */
  live(): boolean;
  /**
   * Null, or a promise to await before the next step of ordered work: an urgent delivery is in
   * flight in this replica (urgent-first.ts). Always null on the urgent lane.
   */
  holdForUrgent(): Promise<void> | null;
}
export type StageHandler = (env: Envelope, ctx: StageContext) => Promise<void>;

export interface StageWorkerOptions {
  assigner?: ShardAssigner;
}

/** Urgent consumers outrank shard consumers on the broker (consumer priority). */
const URGENT_CONSUMER_PRIORITY = 10;
const OUTAGE_BACKOFF_MIN_MS = 200;
const OUTAGE_BACKOFF_MAX_MS = 3000;

/** Thrown when a delivery's channel is gone (the broker has requeued it): nothing more may be done with it. */
export class DeliveryGone extends Error {
  override readonly name = 'DeliveryGone';
}

/** `StageContext.holdForUrgent` of the urgent lane: urgent work is never held. */
const NO_HOLD = (): null => null;

/** Throws DeliveryGone once the delivery's channel is gone: nothing more may be done with it. */
function assertLive(delivery: Delivery, cause?: unknown): void {
  if (!delivery.live()) throw new DeliveryGone('the delivery went back to its queue with its channel', cause === undefined ? undefined : { cause });
}

export class StageWorker {
  private readonly log: Logger;
  private readonly failures: FailureRouter;
  private readonly sequencer = new KeySequencer();
  private readonly shardConsumers = new Map<number, QueueConsumer>();
  private urgent: QueueConsumer | null = null;
  private readonly assigner: ShardAssigner;
  readonly ordering: OrderingGuard;
  private readonly status: StatusStore;
  private readonly redeliveries: RedeliveryCounter;
  /** Holds ordered work while an urgent delivery is in flight; only when this replica consumes both lanes. */
  private readonly urgentFirst: UrgentFirst;
  private readonly holdOrdered = (): Promise<void> | null => this.urgentFirst.hold();
  private closing: Promise<void> | null = null;
  private started = false;
  /** Deliveries currently waiting out an outage, by dependency (logged when the first starts and the last ends). */
  private readonly waiting = { broker: 0, redis: 0 };

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
    this.redeliveries = new RedeliveryCounter(rt, stage);
    this.urgentFirst = new UrgentFirst(rt.cfg.workerLanes === 'all' ? rt.cfg.urgentHoldMs : 0, (ms) => rt.metrics.urgentHoldSeconds.inc({ stage }, ms / 1000));
  }

  /**
   * Consumes the urgent lane, then takes part in the shard assignment — or only one of the two
   * (WORKER_LANES): a dedicated urgent replica shares its event loop with no backlog.
   */
  async start(): Promise<void> {
    const { names } = this.rt.topology;
    const lanes = this.rt.cfg.workerLanes;
    if (lanes !== 'ordered') {
      this.urgent = new QueueConsumer(this.rt.broker, {
        queue: names.urgent(this.stage),
        prefetch: this.rt.cfg.urgentPrefetch,
        priority: URGENT_CONSUMER_PRIORITY,
        urgent: true,
        logger: this.log,
        handler: (msg, d) => this.onDelivery(msg, d, laneOf(this.stage, 'urgent')),
      });
      // A classic urgent queue lives on one node: while that node is down the consumer retries by
      // itself, and the shards must not wait for it.
      await this.urgent.start().catch((err: Error) =>
        this.log.error({ err: err.message, queue: names.urgent(this.stage) }, 'cannot consume the urgent lane yet; retrying in the background'),
      );
    }
    if (lanes !== 'urgent') {
      await this.assigner.start({
        acquire: (shard) => this.startShard(shard),
        release: (shard, opts) => this.stopShard(shard, opts?.leaseLost),
      });
    }
    this.started = true;
  }

  ready(): boolean {
    return this.started && !this.closing && this.rt.broker.connected();
  }

  /** Null while every lane this replica should consume has a live subscription; else which do not. */
  consumeProblem(): string | null {
    if (!this.started || this.closing) return null;
    const down = [this.urgent, ...this.shardConsumers.values()].filter((c): c is QueueConsumer => c !== null && !c.subscribed()).map((c) => c.queue);
    return down.length === 0 ? null : `not consuming ${down.join(', ')}`;
  }

  ownedShards(): number[] {
    return [...this.shardConsumers.keys()].sort((a, b) => a - b);
  }

  private async startShard(shard: number): Promise<void> {
    if (this.shardConsumers.has(shard)) return;
    const c = new QueueConsumer(this.rt.broker, {
      queue: this.rt.topology.names.shardQueue(this.stage, shard),
      prefetch: this.rt.cfg.shardPrefetch,
      logger: this.log,
      handler: (msg, d) => this.onDelivery(msg, d, laneOf(this.stage, 'ordered'), shard),
    });
    this.shardConsumers.set(shard, c);
    try {
      await c.start();
    } catch (err) {
      // The assigner gives the lease back: the consumer must not go on subscribing by itself (its
      // revive timer would) on a shard this replica no longer holds.
      this.shardConsumers.delete(shard);
      await c.stop(0).catch(() => {});
      throw err;
    }
    this.rt.metrics.shardsOwned.set({ stage: this.stage }, this.shardConsumers.size);
  }

  /**
   * Stops consuming a shard after everything it handed out is finished and acked (the fence).
   * `leaseLost`: another replica may already be subscribed and waiting (single active consumer), so
   * the subscription is kept until the drain is over rather than cancelled first (consumer.ts).
   */
  private async stopShard(shard: number, leaseLost = false): Promise<void> {
    const c = this.shardConsumers.get(shard);
    if (!c) return;
    await c.stop(this.rt.cfg.shutdownGraceMs, { cancel: !leaseLost });
    this.shardConsumers.delete(shard);
    this.ordering.unloadShard(shard);
    this.rt.metrics.shardsOwned.set({ stage: this.stage }, this.shardConsumers.size);
  }

  private onDelivery(msg: ConsumeMessage, delivery: Delivery, lane: Lane, shard?: number): Promise<void> {
    this.rt.metrics.consumed.inc({ stage: this.stage, lane });
    let env: Envelope;
    try {
      env = parseEnvelope(msg.content);
    } catch (err) {
      const e = err as EnvelopeError;
      const poison = new PoisonMessageError(`invalid envelope: ${e.message}`, { code: 'invalid-envelope', cause: err });
      return this.steady(delivery, () => this.failures.apply(decideFate(poison, 0, this.tiers()), { msg, lane, envelope: null }, poison)).then(() => {
        const id = msg.properties.messageId;
        if (id) this.recordDead(id, poison, { mustExist: true });
      });
    }
    if (shard === undefined) {
      const end = this.urgentFirst.begin();
      return this.process(msg, delivery, env, lane).finally(end);
    }
    return this.sequencer.run(env.user, () => this.process(msg, delivery, env, lane, shard));
  }

  private tiers(): number[] {
    return this.rt.topology.options.retryTiersMs;
  }

  /**
   * Runs one step; while it fails because RabbitMQ or Redis is unavailable, waits (backing off)
   * and runs it again — as long as the delivery's channel lives and the worker is not closing.
   */
  private async steady<T>(delivery: Delivery, step: () => Promise<T>): Promise<T> {
    let backoff = OUTAGE_BACKOFF_MIN_MS;
    let waitingFor: 'broker' | 'redis' | null = null;
    try {
      for (;;) {
        try {
          return await step();
        } catch (err) {
          const dep = outageOf(err);
          if (!dep || this.closing) throw err;
          assertLive(delivery, err);
          if (waitingFor !== dep) {
            if (waitingFor) this.stopWaiting(waitingFor);
            waitingFor = dep;
            if (this.waiting[dep]++ === 0) this.log.warn({ dependency: dep, err: (err as Error).message }, 'dependency unavailable; holding deliveries until it is back');
          }
          const until = Date.now() + backoff;
          while (Date.now() < until && delivery.live() && !this.closing) await sleep(Math.min(100, until - Date.now()));
          backoff = Math.min(backoff * 2, OUTAGE_BACKOFF_MAX_MS);
        }
      }
    } finally {
      if (waitingFor) this.stopWaiting(waitingFor);
    }
  }

  /**
   * A step of the main path: on a shard (ordered work), first waits while an urgent delivery is in
   * flight in this replica (urgent-first.ts) — every ordered delivery pauses at its next step.
   */
  private async step<T>(delivery: Delivery, shard: number | undefined, fn: () => Promise<T>): Promise<T> {
    if (shard !== undefined) {
      const hold = this.urgentFirst.hold();
      if (hold) await hold;
    }
    return this.steady(delivery, fn);
  }

  private stopWaiting(dep: 'broker' | 'redis'): void {
    if (--this.waiting[dep] === 0) this.log.info({ dependency: dep }, 'dependency back; deliveries flow again');
  }

  /**
   * Times the broker handed this message out before this delivery: the quorum queue's count, or —
   * a classic queue (the urgent lane by default) only flags a redelivery — ours, in Redis. Only a
   * redelivery without the broker's count costs a round trip.
   */
  private priorDeliveries(msg: ConsumeMessage, delivery: Delivery, env: Envelope): number | Promise<number> {
    const header = msg.properties.headers?.['x-delivery-count'];
    if (header !== undefined || !msg.fields.redelivered) return Number(header ?? 0);
    return this.steady(delivery, () => this.redeliveries.count(env.id));
  }

  private async process(msg: ConsumeMessage, delivery: Delivery, env: Envelope, lane: Lane, shard?: number): Promise<void> {
    const prior = this.priorDeliveries(msg, delivery, env);
    if (typeof prior === 'number') return this.handle(msg, delivery, env, lane, shard, prior);
    await this.handle(msg, delivery, env, lane, shard, await prior);
    // Settled (a requeue throws past this): a later copy of the message counts from 0 again.
    this.redeliveries.forget(env.id).catch((err: Error) => this.log.warn({ err: err.message, messageId: env.id }, 'could not clear the redelivery count'));
  }

  private async handle(msg: ConsumeMessage, delivery: Delivery, env: Envelope, lane: Lane, shard: number | undefined, prior: number): Promise<void> {
    const ordered = shard !== undefined && this.rt.cfg.orderingMode === 'strict';
    const attempt = Number(msg.properties.headers?.[H.attempt] ?? env.attempt ?? 0);
    const log = lazyChild(this.log, { messageId: env.id, correlationId: env.correlationId, lane });
    if (this.log.isLevelEnabled('debug')) log.debug({ user: env.user, shard, redelivered: msg.fields.redelivered, live: delivery.live() }, 'processing');
    const limit = this.rt.cfg.deliveryLimit;
    if (limit > 0 && prior >= limit) {
      // Handed out DELIVERY_LIMIT times: earlier holders crashed or lost their channel while on it.
      const poison = new PoisonMessageError(`handed out ${prior + 1} times without being settled: its handler crashed or hung each time`, { code: 'delivery-limit' });
      await this.fail(msg, delivery, env, lane, poison, attempt, ordered ? shard : undefined, log);
      return;
    }
    if (ordered && (await this.parkedBehind(msg, delivery, env, lane, shard, log))) return;
    // A delivery whose channel is gone (the shard was handed over after a drain timeout, or the
    // connection dropped) is the broker's again: another consumer gets it, so do not act on it.
    assertLive(delivery);
    this.rt.metrics.inFlight.inc({ stage: this.stage });
    try {
      try {
        const holdForUrgent = shard === undefined ? NO_HOLD : this.holdOrdered;
        await this.step(delivery, shard, () => this.handler({ ...env, attempt }, { lane, msg, log, live: () => delivery.live(), holdForUrgent }));
      } catch (err) {
        if (err instanceof DeliveryGone) throw err;
        await this.fail(msg, delivery, env, lane, asClassified(err), attempt, ordered ? shard : undefined, log);
        return;
      }
      if (ordered) await this.step(delivery, shard, () => this.ordering.done(env, shard));
    } finally {
      this.rt.metrics.inFlight.dec({ stage: this.stage });
    }
  }

  /** Strict order: parks the delivery when an earlier message of its user is in a retry tier (true). */
  private async parkedBehind(msg: ConsumeMessage, delivery: Delivery, env: Envelope, lane: Lane, shard: number, log: Logger): Promise<boolean> {
    await this.step(delivery, shard, () => this.ordering.ensureShard(shard));
    const wait = await this.step(delivery, shard, () => this.ordering.mustWait(env, msg, shard));
    if (!wait) return false;
    // Parking puts a copy in a retry tier: not for a delivery the broker has requeued already.
    assertLive(delivery);
    log.debug({ user: env.user, shard }, 'parked behind an earlier message of the user');
    await this.steady(delivery, () => this.ordering.park(env, msg, lane, this.failures, shard, wait));
    return true;
  }

  private async fail(
    msg: ConsumeMessage,
    delivery: Delivery,
    env: Envelope,
    lane: Lane,
    err: ClassifiedError,
    attempt: number,
    shard: number | undefined,
    log: Logger,
  ): Promise<void> {
    // Routing a copy to a retry tier or the DLQ while the broker has requeued the original would put
    // the message in two places; the redelivery will fail or succeed on its own.
    assertLive(delivery, err);
    const fate = decideFate(err, attempt, this.tiers());
    log.warn({ class: err.failureClass, code: err.code, err: err.message, fate }, 'message failed');
    if (shard !== undefined && fate.action === 'retry') await this.steady(delivery, () => this.ordering.hold(env, shard, fate.tierMs));
    // DLQ_ORDERING_MODE=strict: the dead letter keeps holding its user until it is replayed or purged.
    const holdsDead = shard !== undefined && fate.action === 'dead' && this.ordering.holdsDeadLetters;
    if (holdsDead) await this.steady(delivery, () => this.ordering.deadLettered(env, shard));
    await this.steady(delivery, () => this.failures.apply(fate, { msg, lane, envelope: env }, err));
    if (fate.action === 'dead') {
      this.recordDead(env.id, err);
      if (shard !== undefined && !holdsDead) await this.steady(delivery, () => this.ordering.done(env, shard));
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
    this.urgentFirst.stop();
    this.ordering.stop();
    return (this.closing ??= runSteps(this.log, [
      ['stop urgent consumer', () => this.urgent?.stop(this.rt.cfg.shutdownGraceMs)],
      ['release shards', () => this.assigner.stop()],
    ]));
  }
}
