/**
 * Carries out a Fate: publishes the message to its retry tier or to the dead-letter exchange with
 * the failure headers (docs/ARCHITECTURE.md, "Failures"), confirmed, before the caller acks the original delivery.
 */
import type { ConsumeMessage } from 'amqplib';
import type { Counter } from 'prom-client';
import type { Broker } from '../amqp/broker.js';
import { H, type Envelope } from '../domain/envelope.js';
import { failureReason } from '../platform/redact.js';
import type { Topology } from '../amqp/topology/declaration.js';
import { parseLane, type Lane } from '../amqp/topology/names.js';
import type { ClassifiedError } from './errors.js';
import type { Fate } from './fate.js';

/**
 * The delivery's headers minus the broker's delivery count: a quorum queue sets it only on
 * redeliveries, so a copy carried into a retry tier would make the message look redelivered (and
 * soon over the delivery limit) when it comes back.
 */
function carried(msg: ConsumeMessage): Record<string, unknown> {
  const { 'x-delivery-count': _count, ...rest } = msg.properties.headers ?? {};
  return rest;
}

export interface FailedDelivery {
  msg: ConsumeMessage;
  lane: Lane;
  /** The parsed envelope, or null for a body that did not parse (poison). */
  envelope: Envelope | null;
}

/** What the router counts: declared by the stage workers' metrics (shared/stage/metrics.ts). */
export interface RouterMetrics {
  retried: Counter<'stage' | 'tier' | 'class'>;
  deadLettered: Counter<'stage' | 'class' | 'code'>;
}

export class FailureRouter {
  constructor(
    private readonly broker: Broker,
    private readonly topology: Topology,
    private readonly metrics: RouterMetrics,
  ) {}

  /** Where a message of this lane is replayed to: the lane's exchange, keyed by the user. */
  origin(lane: Lane): string {
    return this.topology.names.exchangeForLane(lane);
  }

  headersFor(d: FailedDelivery, err: ClassifiedError, attempt: number): Record<string, unknown> {
    const now = new Date().toISOString();
    const prev = carried(d.msg);
    const stage = parseLane(d.lane)?.stage ?? 'unknown';
    return {
      ...prev,
      [H.lane]: d.lane,
      [H.stage]: stage,
      [H.attempt]: attempt,
      [H.user]: d.envelope?.user ?? prev[H.user] ?? d.msg.fields.routingKey,
      [H.firstFailureAt]: prev[H.firstFailureAt] ?? now,
      [H.lastFailureAt]: now,
      [H.failureClass]: err.failureClass,
      [H.failureCode]: err.code,
      // The reason, not what was sent: provider and bot answers can echo the message's text.
      [H.failureMessage]: failureReason(err, d.envelope ? [d.envelope.payload, d.envelope.user] : undefined),
      [H.originExchange]: this.origin(d.lane),
      [H.originRoutingKey]: d.msg.fields.routingKey,
    };
  }

  private body(d: FailedDelivery, attempt: number): Buffer {
    return d.envelope ? Buffer.from(JSON.stringify({ ...d.envelope, attempt })) : d.msg.content;
  }

  /**
   * @param opts.park the message did not fail: it only waits behind an earlier one (strict order),
   *   so it carries no failure headers and is not counted as a retry.
   */
  async apply(fate: Fate, d: FailedDelivery, err: ClassifiedError, opts: { park?: boolean } = {}): Promise<void> {
    const stage = parseLane(d.lane)?.stage ?? 'unknown';
    const headers = opts.park
      ? { ...carried(d.msg), [H.lane]: d.lane, [H.stage]: stage, [H.attempt]: fate.attempt, [H.parked]: true }
      : this.headersFor(d, err, fate.attempt);
    headers[H.route] = d.lane;
    const common = {
      routingKey: d.msg.fields.routingKey,
      body: this.body(d, fate.attempt),
      messageId: d.msg.properties.messageId ?? d.envelope?.id ?? 'unknown',
      correlationId: d.msg.properties.correlationId,
      priority: d.msg.properties.priority,
    };
    if (fate.action === 'retry') {
      const exchange = this.topology.names.retry(fate.tierMs);
      await this.broker.publish({ ...common, exchange, headers: { ...headers, [H.tier]: fate.tierMs } });
      if (!opts.park) this.metrics.retried.inc({ stage, tier: exchange.slice(exchange.lastIndexOf('.') + 1), class: err.failureClass });
    } else {
      await this.broker.publish({ ...common, exchange: this.topology.names.dead, headers });
      this.metrics.deadLettered.inc({ stage, class: err.failureClass, code: err.code });
    }
  }
}
