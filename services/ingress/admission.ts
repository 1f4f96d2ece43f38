/**
 * Back-pressure at the door: the ingress refuses (503 + Retry-After) instead of queueing work in
 * memory while the broker is unreachable or has blocked publishing (memory/disk alarm), and caps the
 * messages it has in flight to the broker at once (INGRESS_MAX_IN_FLIGHT; 0 turns the cap off).
 */
import type { Broker } from '../../shared/amqp/broker.js';
import type { IngressMetrics } from './metrics.js';

export class UnavailableError extends Error {
  constructor(
    message: string,
    readonly reason: 'disconnected' | 'blocked' | 'capacity' | 'redis' | 'timeout' | 'nack' | 'closed',
    options?: { cause?: unknown; outcomeUnknown?: boolean },
  ) {
    super(message, options);
    this.name = 'UnavailableError';
    this.outcomeUnknown = options?.outcomeUnknown ?? false;
  }

  /** The message may have been stored after all (a confirm timed out): retry with the same idempotency key. */
  readonly outcomeUnknown: boolean;
}

/** Slots held by one request; release() is idempotent. */
export interface Lease {
  readonly size: number;
  release(): void;
}

export class Admission {
  private inFlight = 0;

  constructor(
    private readonly broker: Broker,
    private readonly max: number,
    private readonly metrics: IngressMetrics,
  ) {}

  get current(): number {
    return this.inFlight;
  }

  /** Throws UnavailableError when the broker cannot take publishes right now. */
  checkBroker(): void {
    if (!this.broker.connected()) throw new UnavailableError('RabbitMQ is unreachable', 'disconnected');
    if (this.broker.blocked()) throw new UnavailableError('RabbitMQ has blocked publishing (resource alarm)', 'blocked');
  }

  /**
   * Takes `n` slots, or throws UnavailableError when they would exceed the cap. A request larger than
   * the whole cap (a 500-message batch under a smaller cap) takes the whole cap, so it can still pass
   * when nothing else is in flight and the total stays bounded.
   */
  acquire(n: number): Lease {
    const size = this.max === 0 ? n : Math.min(n, this.max);
    if (this.max > 0 && size > 0 && this.inFlight + size > this.max) {
      throw new UnavailableError(`ingress at capacity (${this.inFlight} of ${this.max} messages in flight)`, 'capacity');
    }
    this.inFlight += size;
    this.gauge();
    let released = false;
    return {
      size,
      release: () => {
        if (released) return;
        released = true;
        this.inFlight -= size;
        this.gauge();
      },
    };
  }

  private gauge(): void {
    this.metrics.inFlight.set({ stage: 'ingress' }, this.inFlight);
  }
}
