/**
 * The dispatcher's metrics, beside the stage workers' (shared/stage/metrics.ts): the bot handler's latency.
 */
import { Histogram } from 'prom-client';
import { LATENCY_BUCKETS } from '../../shared/platform/metrics.js';
import { StageMetrics } from '../../shared/stage/metrics.js';

export class DispatcherMetrics extends StageMetrics {
  readonly handlerLatency = new Histogram({
    name: 'postmaster_handler_latency_seconds',
    help: 'Bot handler call latency.',
    labelNames: ['outcome'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
}
