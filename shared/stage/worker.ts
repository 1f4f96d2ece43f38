/**
 * A stage worker (dispatcher or sender): consumes the stage's urgent lane and the shards this
 * replica owns, runs one user's messages strictly one at a time and in order (many users at once),
 * and turns every failure into a fate (retry tier or DLQ) before acking. This file is the consuming
 * side (which queues, when, and the hand-over of shards); deliveries.ts is what happens to each
 * delivery.
 */
import { QueueConsumer } from './consumer.js';
import type { Logger } from '../platform/logger.js';
import type { Runtime } from '../amqp/runtime.js';
import type { StageMetrics } from './metrics.js';
import { laneOf, type Stage } from '../amqp/topology/names.js';
import { runSteps } from '../platform/shutdown.js';
import type { OrderingGuard } from './ordering.js';
import { StaticAssigner, type ShardAssigner } from './assigner.js';
import { Deliveries, type StageHandler } from './deliveries.js';

export { DeliveryGone, type StageContext, type StageHandler } from './deliveries.js';

export interface StageWorkerOptions {
  assigner?: ShardAssigner;
}

/** Urgent consumers outrank shard consumers on the broker (consumer priority). */
const URGENT_CONSUMER_PRIORITY = 10;

export class StageWorker {
  private readonly log: Logger;
  private readonly deliveries: Deliveries;
  private readonly shardConsumers = new Map<number, QueueConsumer>();
  private urgent: QueueConsumer | null = null;
  private readonly assigner: ShardAssigner;
  readonly ordering: OrderingGuard;
  private closing: Promise<void> | null = null;
  private started = false;

  constructor(
    private readonly rt: Runtime<StageMetrics>,
    readonly stage: Stage,
    handler: StageHandler,
    opts: StageWorkerOptions = {},
  ) {
    this.log = rt.log.child({ component: `${stage}-worker` });
    this.assigner = opts.assigner ?? new StaticAssigner(rt.topology.options.shards);
    this.deliveries = new Deliveries(rt, stage, handler, this.log, () => this.closing !== null);
    this.ordering = this.deliveries.ordering;
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
        handler: (msg, d) => this.deliveries.onDelivery(msg, d, laneOf(this.stage, 'urgent')),
      });
      // A classic urgent queue lives on one node: while that node is down the consumer retries by
      // itself, and the shards must not wait for it.
      await this.urgent
        .start()
        .catch((err: Error) =>
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
      handler: (msg, d) => this.deliveries.onDelivery(msg, d, laneOf(this.stage, 'ordered'), shard),
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

  /** Stops intake, finishes in-flight work, releases shards. Idempotent. */
  close(): Promise<void> {
    this.deliveries.stop();
    return (this.closing ??= runSteps(this.log, [
      ['stop urgent consumer', () => this.urgent?.stop(this.rt.cfg.shutdownGraceMs)],
      ['release shards', () => this.assigner.stop()],
    ]));
  }
}
