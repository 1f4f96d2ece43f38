/**
 * Each service's metrics class (services/<name>/metrics.ts), as its service.ts names it to
 * createRuntime: what a scrape of that service shows, for the tests that read metric names.
 */
import { DispatcherMetrics } from '../../services/dispatcher/metrics.js';
import { ReplayerMetrics } from '../../services/dlq-replayer/metrics.js';
import { IngressMetrics } from '../../services/ingress/metrics.js';
import { SenderMetrics } from '../../services/sender/metrics.js';
import type { Metrics } from '../../shared/platform/metrics.js';

export const SERVICE_METRICS = {
  ingress: IngressMetrics,
  dispatcher: DispatcherMetrics,
  sender: SenderMetrics,
  'dlq-replayer': ReplayerMetrics,
} as const;

export type MetricJson = Awaited<ReturnType<Metrics['registry']['getMetricsAsJSON']>>[number];

/** Every metric some service exports, once each (by name), prom-client's process metrics included. */
export async function fleetMetrics(): Promise<MetricJson[]> {
  const byName = new Map<string, MetricJson>();
  for (const [service, Class] of Object.entries(SERVICE_METRICS)) {
    for (const m of await new Class(`${service}-test`).registry.getMetricsAsJSON()) byName.set(m.name, m);
  }
  return [...byName.values()];
}
