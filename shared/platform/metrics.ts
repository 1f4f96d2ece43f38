/**
 * Prometheus metrics (`postmaster_` prefix). One registry per service instance, so that
 * tests can run several services in one process.
 *
 * `Metrics` holds what every service exports: the process metrics and what the platform and AMQP
 * layers record (confirmed and unroutable publishes, failing health checks). A service declares its
 * own in a subclass in its folder (services/<name>/metrics.ts), the stage workers over StageMetrics
 * (shared/stage/metrics.ts), and names it to createRuntime (shared/amqp/runtime.ts).
 */
import http from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Health } from './health.js';

export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];

export class Metrics {
  readonly registry = new Registry();
  readonly published: Counter<'exchange'>;
  readonly unroutable: Counter<'exchange'>;
  readonly unhealthy: Gauge<'check'>;

  constructor(service: string) {
    this.registry.setDefaultLabels({ service });
    collectDefaultMetrics({ register: this.registry, prefix: 'postmaster_process_' });
    const r = [this.registry];
    this.published = new Counter({
      name: 'postmaster_published_total',
      help: 'Messages published and confirmed, by exchange.',
      labelNames: ['exchange'],
      registers: r,
    });
    this.unroutable = new Counter({
      name: 'postmaster_unroutable_total',
      help: 'Publishes that reached no queue (a binding or queue is missing) and were refused, by exchange.',
      labelNames: ['exchange'],
      registers: r,
    });
    this.unhealthy = new Gauge({
      name: 'postmaster_unhealthy_seconds',
      help: 'How long a health check has been failing (0 while it passes): publish, consume, event-loop.',
      labelNames: ['check'],
      registers: r,
    });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/**
 * A tiny HTTP server on METRICS_PORT for every service, the ingress included: /metrics, /healthz
 * (liveness), /readyz (readiness), the last two with the failing checks in the body
 * (shared/platform/health.ts). Never on a public port: the bodies name internal failures.
 * Plain node:http rather than express: three fixed routes need no framework.
 */
export async function serveMetrics(
  metrics: Metrics,
  port: number,
  health: Pick<Health, 'readiness' | 'liveness'>,
  host = '0.0.0.0',
): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/metrics') {
      metrics.render().then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    } else if (path === '/healthz' || path === '/readyz') {
      const r = path === '/healthz' ? health.liveness() : health.readiness();
      const body = path === '/healthz' ? { status: r.ok ? 'ok' : 'stuck', failing: r.failing } : { ready: r.ok, failing: r.failing };
      res.writeHead(r.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  let closing: Promise<void> | null = null;
  return {
    port: typeof addr === 'object' && addr ? addr.port : port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
