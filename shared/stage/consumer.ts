/**
 * One consumer of one queue on its own channel (own prefetch). The handler's promise decides:
 * resolved → ack, rejected → nack with requeue (counted by the quorum queue's x-delivery-limit).
 *
 * Deliveries are acked on the very amqplib channel that delivered them. When that channel is gone
 * (connection lost, broker restart, channel closed by the broker) the broker has already requeued
 * them, and their delivery tags would name other messages on a new channel: such acks are dropped.
 * The channel is tracked in the wrapper's *setup* function, which amqp-connection-manager runs on
 * every (re)connect before it re-creates the consumer, so deliveries of the new channel are never
 * mistaken for old ones (its `connect` event fires only after the consumer is back, too late).
 *
 * A channel the broker closes while the connection stays up (e.g. `basic.consume` answered 404
 * because a classic queue's home node is down in a cluster) is not re-opened by
 * amqp-connection-manager until the next reconnect; this consumer re-creates it on a timer instead,
 * so one unavailable queue cannot leave a worker silently idle or take it down.
 */
import type { ChannelWrapper } from 'amqp-connection-manager';
import type { Channel, ConsumeMessage } from 'amqplib';
import type { Broker } from '../amqp/broker.js';
import type { Logger } from '../platform/logger.js';

/** What the handler may ask about its delivery while working on it. */
export interface Delivery {
  /** False once the channel that delivered the message is gone (the broker has requeued it). */
  live(): boolean;
}

export type DeliveryHandler = (msg: ConsumeMessage, delivery: Delivery) => Promise<void>;

export interface QueueConsumerOptions {
  queue: string;
  prefetch: number;
  /** Consumer priority (x-priority): higher is served first by the broker. */
  priority?: number;
  handler: DeliveryHandler;
  logger: Logger;
  /** How long a channel may stay closed while the connection is up before it is re-created. */
  reviveAfterMs?: number;
  /** Consume on the broker's urgent connection (Broker.urgentManager). */
  urgent?: boolean;
}

/** `basic.ack` / `basic.nack` frames sent, and the deliveries they settled. */
export interface SettleCounts {
  frames: number;
  deliveries: number;
}

const MAX_REVIVE_MS = 30_000;
/** How long a stop waits, after closing the channel, for handlers that outlived the grace period. */
export const AFTER_CLOSE_MS = 5000;

export class QueueConsumer {
  private channel: ChannelWrapper | null = null;
  /** The amqplib channel currently delivering, set by the wrapper's setup; null while there is none. */
  private raw: Channel | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private stopping: Promise<void> | null = null;
  private reviveTimer: NodeJS.Timeout | null = null;
  private reviveDelay: number;
  private revivals = 0;
  /** Set by a stop without cancel: deliveries from now on are left for the broker to requeue. */
  private withheld = false;
  /** The acks of the current channel (a new channel, a new one). */
  private acks: Acks | null = null;
  /** Settle frames sent and deliveries they settled, over every channel (the channels' Acks add to it). */
  private readonly counts: SettleCounts = { frames: 0, deliveries: 0 };

  constructor(
    private readonly broker: Broker,
    private readonly opts: QueueConsumerOptions,
  ) {
    this.reviveDelay = opts.reviveAfterMs ?? 2000;
  }

  get queue(): string {
    return this.opts.queue;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** `basic.ack` / `basic.nack` frames sent, and the deliveries they settled, over every channel so far. */
  get settleCounts(): SettleCounts {
    return { ...this.counts };
  }

  /** Times the channel was re-created by this consumer (not by a reconnect). */
  get revivedCount(): number {
    return this.revivals;
  }

  /** True while a channel is open and subscribed (or being subscribed). */
  subscribed(): boolean {
    return this.raw !== null;
  }

  /**
   * Subscribes. Rejects when the first `basic.consume` fails (queue missing, or unavailable); a
   * failure after that is retried by the consumer itself.
   */
  async start(): Promise<void> {
    await this.open();
  }

  private async open(): Promise<void> {
    const ch = this.broker.channel(`consumer:${this.opts.queue}`, {
      setup: async (raw) => {
        this.raw = raw;
        this.acks = new Acks(raw, () => this.raw === raw, this.counts, this.opts.logger, this.opts.queue);
        raw.once('close', () => {
          if (this.raw === raw) this.raw = null;
          this.scheduleRevive();
        });
        await raw.prefetch(this.opts.prefetch, false);
      },
      confirm: false,
      urgent: this.opts.urgent,
    });
    this.channel = ch;
    ch.on('error', (err: Error) => {
      this.opts.logger.warn({ err: err.message, queue: this.opts.queue }, 'consumer channel error');
      this.scheduleRevive();
    });
    // Subscribing on a channel that is not open yet would only queue the subscription (a refusal
    // would then go unseen): wait for it, so that a refused first basic.consume rejects start().
    await ch.waitForConnect();
    await ch.consume(this.opts.queue, (msg) => this.onDelivery(msg), {
      noAck: false,
      consumerTag: this.broker.consumerTag(this.opts.queue),
      ...(this.opts.priority !== undefined ? { arguments: { 'x-priority': this.opts.priority } } : {}),
    });
    this.reviveDelay = this.opts.reviveAfterMs ?? 2000;
    if (this.stopping) await ch.close().catch(() => {}); // stop() came while this was subscribing again
  }

  /**
   * After a channel closed: if no new channel has come (the connection is up, so no reconnect will
   * bring one), close the wrapper and subscribe again on a new one, backing off up to 30 s.
   */
  private scheduleRevive(): void {
    if (this.stopping || this.reviveTimer) return;
    this.reviveTimer = setTimeout(() => {
      this.reviveTimer = null;
      if (this.stopping || this.raw) return;
      if (!this.broker.connected(this.opts.urgent)) return this.scheduleRevive(); // the reconnect will re-run the setup
      const old = this.channel;
      this.revivals++;
      this.opts.logger.warn({ queue: this.opts.queue, afterMs: this.reviveDelay }, 'consumer channel closed while connected; subscribing again');
      this.reviveDelay = Math.min(this.reviveDelay * 2, MAX_REVIVE_MS);
      void (async () => {
        await old?.close().catch(() => {});
        if (this.stopping) return;
        await this.open().catch((err: Error) => {
          this.opts.logger.warn({ err: err.message, queue: this.opts.queue }, 'subscribing again failed; will retry');
          this.scheduleRevive();
        });
      })();
    }, this.reviveDelay);
    this.reviveTimer.unref();
  }

  private onDelivery(msg: ConsumeMessage | null): void {
    if (!msg) return;
    const raw = this.raw;
    if (!raw) return; // cannot happen: deliveries arrive on a channel set up before consume
    // A stop without cancel keeps the subscription while it drains: what arrives meanwhile is left
    // unacked and goes back to the head of the queue, in order, when the channel closes.
    if (this.withheld) return;
    const acks = this.acks!;
    acks.track(msg);
    const delivery: Delivery = { live: () => this.raw === raw };
    const work = this.opts
      .handler(msg, delivery)
      .then(
        () => this.settle(raw, acks, msg, 'ack'),
        (err: Error) => {
          const gone = this.raw !== raw; // the broker has requeued it already
          this.opts.logger[gone ? 'debug' : 'error'](
            { err: err?.message, queue: this.opts.queue, messageId: msg.properties.messageId },
            'handler failed; requeueing',
          );
          this.settle(raw, acks, msg, 'nack');
        },
      )
      .finally(() => this.inFlight.delete(work));
    this.inFlight.add(work);
  }

  private settle(raw: Channel, acks: Acks, msg: ConsumeMessage, how: 'ack' | 'nack'): void {
    if (this.raw !== raw) return; // the broker requeued it with its channel
    acks[how](msg);
  }

  /** Resolves when every delivery handed out so far has been acked or nacked. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => (timer = setTimeout(r, left)))]);
      clearTimeout(timer);
    }
    return true;
  }

  /**
   * Stops consuming: no new delivery reaches the handler, in-flight work may finish and ack within
   * the grace period, then the channel closes (anything still unacked is requeued by the broker).
   * Idempotent.
   *
   * `cancel: true` (the default) cancels the subscription first, so the broker sends nothing more.
   * But on a single-active-consumer queue the broker then activates the next waiting consumer at
   * once, while this one still holds unacked deliveries: that consumer would get the messages
   * behind them. `cancel: false` keeps the subscription (and so the single-active slot) until the
   * drain is over: deliveries that arrive meanwhile are not handed to the handler and go back to the
   * head of the queue when the channel closes (each counts one delivery towards x-delivery-count).
   *
   * Resolves once every handler has returned, or AFTER_CLOSE_MS after the close at the latest.
   */
  stop(graceMs: number, opts: { cancel?: boolean } = {}): Promise<void> {
    const cancel = opts.cancel ?? true;
    return (this.stopping ??= (async () => {
      if (this.reviveTimer) clearTimeout(this.reviveTimer);
      this.reviveTimer = null;
      const ch = this.channel;
      if (!ch) return;
      if (cancel) {
        // One consumer per channel: cancelAll also covers a consumer re-created after a reconnect
        // (whose tag differs from the first one).
        await ch.cancelAll().catch(() => {});
      } else {
        this.withheld = true;
      }
      const drained = await this.drain(graceMs);
      if (!drained) this.opts.logger.warn({ queue: this.opts.queue, left: this.inFlight.size }, 'grace period over; unacked deliveries go back to the queue');
      this.acks?.flush();
      await ch.close().catch(() => {});
      if (drained) return;
      // The handlers still running see their delivery gone at their next step and stop; one already
      // past that check may still write (a copy into a retry tier, a user's hold). Whoever waits for
      // this stop (a shard hand-over, before it deletes the lease) must come after those writes.
      if (!(await this.drain(AFTER_CLOSE_MS))) {
        this.opts.logger.error({ queue: this.opts.queue, left: this.inFlight.size }, 'handlers still running after their channel closed');
      }
    })());
  }
}

/**
 * The acks of one channel, in as few frames as the order of completion allows. Handlers finish out
 * of order (users of one shard run side by side); each finished delivery is acked on the next turn
 * of the event loop, and the longest run of finished ones from the oldest delivery still open goes
 * as one `basic.ack` with `multiple`, which the quorum queue settles as one command of its log
 * instead of one per message. A finished delivery behind one still at work is acked on its own at
 * the same time, so that a slow handler never holds the prefetch window.
 * Exported for the bench's bare chain (scripts/bench/chain-worker.ts), which acks as the workers do.
 */
export class Acks {
  /** Deliveries handed to the handler and not yet settled, oldest first. */
  private open: ConsumeMessage[] = [];
  private readonly finished = new Set<number>();
  private scheduled = false;

  constructor(
    private readonly raw: Channel,
    /** False once the channel is gone: the broker has requeued everything still unacked. */
    private readonly live: () => boolean,
    private readonly counts: SettleCounts,
    private readonly logger: Logger,
    private readonly queue: string,
  ) {}

  track(msg: ConsumeMessage): void {
    this.open.push(msg);
  }

  ack(msg: ConsumeMessage): void {
    this.finished.add(msg.fields.deliveryTag);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  nack(msg: ConsumeMessage): void {
    this.open = this.open.filter((m) => m !== msg);
    this.send(() => this.raw.nack(msg, false, true), 1);
  }

  /** Sends every ack owed now. */
  flush(): void {
    this.scheduled = false;
    if (this.finished.size === 0) return;
    if (!this.live()) {
      this.finished.clear();
      this.open = [];
      return;
    }
    let run = 0;
    while (run < this.open.length && this.finished.delete(this.open[run].fields.deliveryTag)) run++;
    if (run > 0) {
      const last = this.open[run - 1];
      this.open = this.open.slice(run);
      this.send(() => this.raw.ack(last, true), run);
    }
    if (this.finished.size === 0) return;
    const still: ConsumeMessage[] = [];
    for (const m of this.open) {
      if (this.finished.delete(m.fields.deliveryTag)) this.send(() => this.raw.ack(m), 1);
      else still.push(m);
    }
    this.open = still;
  }

  private send(frame: () => void, deliveries: number): void {
    try {
      frame();
      this.counts.frames++;
      this.counts.deliveries += deliveries;
    } catch (err) {
      // The channel closed meanwhile: the broker requeues what it had not been told about.
      this.logger.warn({ err: (err as Error).message, queue: this.queue }, 'could not settle a delivery; the broker requeues it');
    }
  }
}
