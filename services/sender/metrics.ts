/**
 * The sender's metrics, beside the stage workers' (shared/stage/metrics.ts): provider calls and their
 * latency, end-to-end latency, window fallbacks, messaging limits and the rate limiters.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import { LATENCY_BUCKETS } from '../../shared/platform/metrics.js';
import { DUPLICATES_DROPPED, StageMetrics } from '../../shared/stage/metrics.js';

export class SenderMetrics extends StageMetrics {
  /** Redeliveries of messages already sent, dropped by the send ledger (stage="send"). */
  readonly duplicatesDropped = new Counter({ ...DUPLICATES_DROPPED, registers: [this.registry] });
  readonly sent = new Counter({
    name: 'postmaster_sent_total',
    help: 'Provider calls by outcome, Cloud API code and business number (phone number id).',
    labelNames: ['outcome', 'code', 'number'],
    registers: [this.registry],
  });
  readonly windowFallbacks = new Counter({
    name: 'postmaster_window_fallbacks_total',
    help: "Free-form messages sent as their fallbackTemplate because the customer-service window was closed: by our check (window-closed) or the Cloud API's 131047.",
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly messagingLimit = new Counter({
    name: 'postmaster_messaging_limit_total',
    help: "Business-initiated sends checked against their portfolio's messaging limit: admitted or refused.",
    labelNames: ['portfolio', 'outcome'],
    registers: [this.registry],
  });
  readonly endToEnd = new Histogram({
    name: 'postmaster_end_to_end_seconds',
    help: 'Accept → provider 2xx.',
    labelNames: ['lane'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly providerLatency = new Histogram({
    name: 'postmaster_provider_latency_seconds',
    help: 'Cloud API call latency.',
    labelNames: ['outcome'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly tokensWaited = new Counter({
    name: 'postmaster_rate_limit_waits_total',
    help: 'Sends that waited for a rate-limit token.',
    labelNames: ['limit'],
    registers: [this.registry],
  });
  readonly throttleWaitSeconds = new Histogram({
    name: 'postmaster_rate_limit_wait_seconds',
    help: 'Time spent waiting for a rate-limit token.',
    labelNames: ['limit'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly sendRate = new Gauge({
    name: 'postmaster_send_rate_per_second',
    help: "Sends per second the sender's limiter allows now for a business number: the configured rate times the AIMD factor, 0 while the provider's penalty holds.",
    labelNames: ['number'],
    registers: [this.registry],
  });
}
