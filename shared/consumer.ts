/**
 * One consumer of one queue on its own channel (own prefetch). The handler's promise decides:
 * resolved → ack, rejected → nack with requeue (counted by the quorum queue's x-delivery-limit).
 * Acks of deliveries from a channel that has since been re-opened are dropped: the broker already
 * requeued those messages, and their delivery tags would name other messages on the new channel.
 */
import type { ChannelWrapper } from 'amqp-connection-manager';
import type { ConsumeMessage } from 'amqplib';
import type { Broker } from './broker.js';
import type { Logger } from './logger.js';

export type DeliveryHandler = (msg: ConsumeMessage) => Promise<void>;

export interface QueueConsumerOptions {
  queue: string;
  prefetch: number;
  /** Consumer priority (x-priority): higher is served first by the broker. */
  priority?: number;
  handler: DeliveryHandler;
  logger: Logger;
}

export class QueueConsumer {
  private channel: ChannelWrapper | null = null;
  private generation = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private stopping: Promise<void> | null = null;

  constructor(
    private readonly broker: Broker,
    private readonly opts: QueueConsumerOptions,
  ) {}

  get queue(): string {
    return this.opts.queue;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  async start(): Promise<void> {
    const ch = this.broker.channel(`consumer:${this.opts.queue}`, undefined, false);
    this.channel = ch;
    ch.on('connect', () => {
      this.generation++;
    });
    ch.on('error', (err: Error) => this.opts.logger.warn({ err: err.message, queue: this.opts.queue }, 'consumer channel error'));
    await ch.consume(this.opts.queue, (msg) => this.onDelivery(msg), {
      prefetch: this.opts.prefetch,
      noAck: false,
      ...(this.opts.priority !== undefined ? { arguments: { 'x-priority': this.opts.priority } } : {}),
    });
  }

  private onDelivery(msg: ConsumeMessage | null): void {
    if (!msg || !this.channel) return;
    const gen = this.generation;
    const ch = this.channel;
    const work = this.opts
      .handler(msg)
      .then(
        () => {
          if (gen === this.generation) ch.ack(msg);
        },
        (err: Error) => {
          this.opts.logger.error({ err: err?.message, queue: this.opts.queue, messageId: msg.properties.messageId }, 'handler failed; requeueing');
          if (gen === this.generation) ch.nack(msg, false, true);
        },
      )
      .finally(() => this.inFlight.delete(work));
    this.inFlight.add(work);
  }

  /** Resolves when every delivery handed out so far has been acked or nacked. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.inFlight]),
        new Promise((r) => (timer = setTimeout(r, left))),
      ]);
      clearTimeout(timer);
    }
    return true;
  }

  /**
   * Cancels the subscription (no new deliveries), lets in-flight work finish and ack within the
   * grace period, then closes the channel (anything still unacked is requeued by the broker).
   * Idempotent. Resolves to whether everything in flight was finished.
   */
  stop(graceMs: number): Promise<void> {
    return (this.stopping ??= (async () => {
      const ch = this.channel;
      if (!ch) return;
      // One consumer per channel: cancelAll also covers a consumer re-created after a reconnect
      // (whose tag differs from the first one).
      await ch.cancelAll().catch(() => {});
      const drained = await this.drain(graceMs);
      if (!drained) this.opts.logger.warn({ queue: this.opts.queue, left: this.inFlight.size }, 'grace period over; unacked deliveries go back to the queue');
      await ch.close().catch(() => {});
    })());
  }
}
