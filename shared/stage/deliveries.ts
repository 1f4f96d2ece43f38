/**
 * What a stage worker (worker.ts) does with one delivery: parses it, dead-letters a delivery the
 * broker has handed out DELIVERY_LIMIT times, parks it behind an earlier message of its user in
 * retry (strict order), runs the stage's handler, and turns every failure into a fate (retry tier or
 * DLQ) before the delivery is acked.
 *
 * Two things are not the message's fault and never touch its fate: an outage of RabbitMQ or Redis
 * (the failed step is tried again in place, with backoff, while the delivery's channel lives — see
 * failures/outage.ts), and a delivery the broker has handed out DELIVERY_LIMIT times already
 * (earlier holders crashed or lost their channel while on it): that one is dead-lettered as
 * poison/delivery-limit, which also releases its user's strict-order hold — the broker's own
 * x-delivery-limit stays as the net, but a message it dead-letters would leave the hold behind.
 * A classic queue (the urgent lane by default) counts no deliveries: its redeliveries are counted in
 * Redis instead (failures/redeliveries.ts), to the same limit.
 */
import type { ConsumeMessage } from 'amqplib';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Delivery } from './consumer.js';
import { EnvelopeError, H, parseEnvelope, type Envelope } from '../domain/envelope.js';
import { asClassified, PoisonMessageError, type ClassifiedError } from '../failures/errors.js';
import { decideFate } from '../failures/fate.js';
import { FailureRouter } from '../failures/router.js';
import { outageOf } from '../failures/outage.js';
import { RedeliveryCounter } from '../failures/redeliveries.js';
import { lazyChild, type Logger } from '../platform/logger.js';
import type { Runtime } from '../amqp/runtime.js';
import type { StageMetrics } from './metrics.js';
import { KeySequencer } from './sequencer.js';
import { StatusStore } from '../domain/status.js';
import type { Lane, Stage } from '../amqp/topology/names.js';
import { OrderingGuard } from './ordering.js';
import { UrgentFirst } from './urgent-first.js';

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

/** Thrown when a delivery's channel is gone (the broker has requeued it): nothing more may be done with it. */
export class DeliveryGone extends Error {
  override readonly name = 'DeliveryGone';
}

const OUTAGE_BACKOFF_MIN_MS = 200;
const OUTAGE_BACKOFF_MAX_MS = 3000;

/** `StageContext.holdForUrgent` of the urgent lane: urgent work is never held. */
const NO_HOLD = (): null => null;

/** One delivery on its way through the worker: what each step needs to know about it. */
interface Handling {
  msg: ConsumeMessage;
  delivery: Delivery;
  env: Envelope;
  lane: Lane;
  /** The shard it came from; undefined on the urgent lane. */
  shard: number | undefined;
  /** Its shard, when strict order holds its user's later messages behind it (ORDERING_MODE=strict). */
  orderedShard: number | undefined;
  /** Attempts so far (the retry header, else the envelope's). */
  attempt: number;
  log: Logger;
}

/** Throws DeliveryGone once the delivery's channel is gone: nothing more may be done with it. */
function assertLive(delivery: Delivery, cause?: unknown): void {
  if (!delivery.live()) throw new DeliveryGone('the delivery went back to its queue with its channel', cause === undefined ? undefined : { cause });
}

export class Deliveries {
  private readonly failures: FailureRouter;
  private readonly sequencer = new KeySequencer();
  readonly ordering: OrderingGuard;
  private readonly status: StatusStore;
  private readonly redeliveries: RedeliveryCounter;
  /** Holds ordered work while an urgent delivery is in flight; only when this replica consumes both lanes. */
  private readonly urgentFirst: UrgentFirst;
  private readonly holdOrdered = (): Promise<void> | null => this.urgentFirst.hold();
  /** Deliveries currently waiting out an outage, by dependency (logged when the first starts and the last ends). */
  private readonly waiting = { broker: 0, redis: 0 };

  constructor(
    private readonly rt: Runtime<StageMetrics>,
    private readonly stage: Stage,
    private readonly handler: StageHandler,
    private readonly log: Logger,
    /** True once the worker is closing: an outage is no longer waited out. */
    private readonly closing: () => boolean,
  ) {
    this.failures = new FailureRouter(rt.broker, rt.topology, rt.metrics);
    this.ordering = new OrderingGuard(rt, stage);
    this.status = new StatusStore(rt);
    this.redeliveries = new RedeliveryCounter(rt, stage);
    this.urgentFirst = new UrgentFirst(rt.cfg.workerLanes === 'all' ? rt.cfg.urgentHoldMs : 0, (ms) => rt.metrics.urgentHoldSeconds.inc({ stage }, ms / 1000));
  }

  /** Handles a delivery of `lane` (of `shard`, on an ordered lane); resolves when it may be acked. */
  onDelivery(msg: ConsumeMessage, delivery: Delivery, lane: Lane, shard?: number): Promise<void> {
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
    const h: Handling = {
      msg,
      delivery,
      env,
      lane,
      shard,
      orderedShard: shard !== undefined && this.rt.cfg.orderingMode === 'strict' ? shard : undefined,
      attempt: Number(msg.properties.headers?.[H.attempt] ?? env.attempt ?? 0),
      log: lazyChild(this.log, { messageId: env.id, correlationId: env.correlationId, lane }),
    };
    if (shard === undefined) {
      const end = this.urgentFirst.begin();
      return this.process(h).finally(end);
    }
    return this.sequencer.run(env.user, () => this.process(h));
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
          if (!dep || this.closing()) throw err;
          assertLive(delivery, err);
          if (waitingFor !== dep) {
            if (waitingFor) this.stopWaiting(waitingFor);
            waitingFor = dep;
            if (this.waiting[dep]++ === 0)
              this.log.warn({ dependency: dep, err: (err as Error).message }, 'dependency unavailable; holding deliveries until it is back');
          }
          const until = Date.now() + backoff;
          while (Date.now() < until && delivery.live() && !this.closing()) await sleep(Math.min(100, until - Date.now()));
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
  private async step<T>(h: Handling, fn: () => Promise<T>): Promise<T> {
    if (h.shard !== undefined) {
      const hold = this.urgentFirst.hold();
      if (hold) await hold;
    }
    return this.steady(h.delivery, fn);
  }

  private stopWaiting(dep: 'broker' | 'redis'): void {
    if (--this.waiting[dep] === 0) this.log.info({ dependency: dep }, 'dependency back; deliveries flow again');
  }

  /**
   * Times the broker handed this message out before this delivery: the quorum queue's count, or —
   * a classic queue (the urgent lane by default) only flags a redelivery — ours, in Redis. Only a
   * redelivery without the broker's count costs a round trip.
   */
  private priorDeliveries({ msg, delivery, env }: Handling): number | Promise<number> {
    const header = msg.properties.headers?.['x-delivery-count'];
    if (header !== undefined || !msg.fields.redelivered) return Number(header ?? 0);
    return this.steady(delivery, () => this.redeliveries.count(env.id));
  }

  private async process(h: Handling): Promise<void> {
    const prior = this.priorDeliveries(h);
    if (typeof prior === 'number') return this.handle(h, prior);
    await this.handle(h, await prior);
    // Settled (a requeue throws past this): a later copy of the message counts from 0 again.
    this.redeliveries.forget(h.env.id).catch((err: Error) => this.log.warn({ err: err.message, messageId: h.env.id }, 'could not clear the redelivery count'));
  }

  private async handle(h: Handling, prior: number): Promise<void> {
    const { msg, delivery, env, lane, shard, orderedShard, log } = h;
    if (this.log.isLevelEnabled('debug')) log.debug({ user: env.user, shard, redelivered: msg.fields.redelivered, live: delivery.live() }, 'processing');
    const limit = this.rt.cfg.deliveryLimit;
    if (limit > 0 && prior >= limit) {
      // Handed out DELIVERY_LIMIT times: earlier holders crashed or lost their channel while on it.
      const poison = new PoisonMessageError(`handed out ${prior + 1} times without being settled: its handler crashed or hung each time`, {
        code: 'delivery-limit',
      });
      await this.fail(h, poison);
      return;
    }
    if (orderedShard !== undefined && (await this.parkedBehind(h, orderedShard))) return;
    // A delivery whose channel is gone (the shard was handed over after a drain timeout, or the
    // connection dropped) is the broker's again: another consumer gets it, so do not act on it.
    assertLive(delivery);
    this.rt.metrics.inFlight.inc({ stage: this.stage });
    try {
      try {
        const holdForUrgent = shard === undefined ? NO_HOLD : this.holdOrdered;
        await this.step(h, () => this.handler({ ...env, attempt: h.attempt }, { lane, msg, log, live: () => delivery.live(), holdForUrgent }));
      } catch (err) {
        if (err instanceof DeliveryGone) throw err;
        await this.fail(h, asClassified(err));
        return;
      }
      if (orderedShard !== undefined) await this.step(h, () => this.ordering.done(env, orderedShard));
    } finally {
      this.rt.metrics.inFlight.dec({ stage: this.stage });
    }
  }

  /** Strict order: parks the delivery when an earlier message of its user is in a retry tier (true). */
  private async parkedBehind(h: Handling, shard: number): Promise<boolean> {
    const { msg, delivery, env, lane } = h;
    await this.step(h, () => this.ordering.ensureShard(shard));
    const wait = await this.step(h, () => this.ordering.mustWait(env, msg, shard));
    if (!wait) return false;
    // Parking puts a copy in a retry tier: not for a delivery the broker has requeued already.
    assertLive(delivery);
    h.log.debug({ user: env.user, shard }, 'parked behind an earlier message of the user');
    await this.steady(delivery, () => this.ordering.park(env, msg, lane, this.failures, shard, wait));
    return true;
  }

  private async fail(h: Handling, err: ClassifiedError): Promise<void> {
    const { msg, delivery, env, lane, orderedShard: shard } = h;
    // Routing a copy to a retry tier or the DLQ while the broker has requeued the original would put
    // the message in two places; the redelivery will fail or succeed on its own.
    assertLive(delivery, err);
    const fate = decideFate(err, h.attempt, this.tiers());
    h.log.warn({ class: err.failureClass, code: err.code, err: err.message, fate }, 'message failed');
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

  /** Stops the urgent-first holds and the hold sweep (the worker is closing). */
  stop(): void {
    this.urgentFirst.stop();
    this.ordering.stop();
  }
}
