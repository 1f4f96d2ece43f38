/**
 * The two AMQP primitives a pass is built on: deliveries as an awaitable stream (one message at a
 * time, in queue order), and publishing that resolves only on the broker's confirm.
 */
import type { ConfirmChannel, ConsumeMessage, Message } from 'amqplib';
import type { Outgoing } from './replay-message.js';

export class DeliveryStream {
  private readonly items: ConsumeMessage[] = [];
  private wake: (() => void) | null = null;
  private error: Error | null = null;
  /** Deliveries received so far (handed out or still buffered). */
  received = 0;

  push(msg: ConsumeMessage | null): void {
    if (msg) {
      this.items.push(msg);
      this.received++;
    } else this.fail(new Error('the broker cancelled the consumer'));
    this.wake?.();
  }

  fail(err: Error): void {
    this.error ??= err;
    this.wake?.();
  }

  /** The next delivery, or null after `idleMs` without one; throws once the channel is gone. */
  async next(idleMs: number): Promise<ConsumeMessage | null> {
    if (this.items.length === 0 && !this.error) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        timer = setTimeout(resolve, idleMs);
      });
      clearTimeout(timer);
      this.wake = null;
    }
    const msg = this.items.shift();
    if (msg) return msg;
    if (this.error) throw this.error;
    return null;
  }
}

/**
 * Publishes on a confirm channel, one message at a time (so the queue receives them in the order
 * the pass handles them). `mandatory`: a message no queue took comes back as 'returned' — the
 * broker sends basic.return before the confirm — instead of vanishing.
 */
export class ConfirmPublisher {
  private returned: Message | null = null;

  constructor(
    private readonly ch: ConfirmChannel,
    private readonly timeoutMs: number,
  ) {
    ch.on('return', (msg: Message) => (this.returned = msg));
  }

  async publish(o: Outgoing): Promise<'confirmed' | 'returned'> {
    this.returned = null;
    const where = o.exchange || `queue ${o.routingKey}`;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no broker confirm for a publish to ${where} within ${this.timeoutMs} ms`)), this.timeoutMs);
      this.ch.publish(o.exchange, o.routingKey, o.content, o.options, (err: unknown) => {
        clearTimeout(timer);
        if (err) reject(new Error(`the broker refused a publish to ${where}`, { cause: err }));
        else resolve();
      });
    });
    return this.returned ? 'returned' : 'confirmed';
  }
}
