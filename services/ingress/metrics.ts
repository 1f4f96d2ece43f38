/**
 * The ingress's metrics, beside every service's (shared/platform/metrics.ts): what it accepted and
 * refused, and its requests in flight and webhook repeats on the stage workers' series (stage="ingress").
 */
import { Counter, Gauge } from 'prom-client';
import { Metrics } from '../../shared/platform/metrics.js';
import { DUPLICATES_DROPPED, IN_FLIGHT } from '../../shared/stage/metrics.js';

export class IngressMetrics extends Metrics {
  readonly accepted = new Counter({
    name: 'postmaster_accepted_total',
    help: 'Messages accepted by the ingress (broker-confirmed).',
    labelNames: ['kind', 'lane'],
    registers: [this.registry],
  });
  readonly publishFailures = new Counter({
    name: 'postmaster_publish_failures_total',
    help: 'Publishes that were not confirmed.',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly rejectedRequests = new Counter({
    name: 'postmaster_rejected_requests_total',
    help: 'HTTP requests rejected by the ingress.',
    labelNames: ['route', 'status'],
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({ ...IN_FLIGHT, registers: [this.registry] });
  readonly duplicatesDropped = new Counter({ ...DUPLICATES_DROPPED, registers: [this.registry] });
}
