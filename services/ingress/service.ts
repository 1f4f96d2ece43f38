/**
 * The ingress service: start() on a port (0 in tests), close() idempotently.
 */
import http from 'node:http';
import type { Config } from '../../shared/platform/config.js';
import { logOutages, type Logger } from '../../shared/platform/logger.js';
import { serveMetrics } from '../../shared/platform/metrics.js';
import { createRuntime, type Runtime } from '../../shared/amqp/runtime.js';
import { IngressMetrics } from './metrics.js';
import { runSteps } from '../../shared/platform/shutdown.js';
import { StatusStore } from '../../shared/domain/status.js';
import { ScheduledSends } from '../../shared/domain/schedule-queue.js';
import { Acceptor } from './accept.js';
import { Admission } from './admission.js';
import { createApp } from './app.js';
import { Claims } from './claims.js';
import { WebhookIntake } from './webhook-intake.js';

export interface Ingress {
  rt: Runtime<IngressMetrics>;
  port: number;
  url: string;
  /** Where /metrics and the detailed /healthz, /readyz are served (METRICS_PORT). */
  metricsPort: number;
  /** The in-flight cap (tests hold slots to see the 503). */
  admission: Admission;
  status: StatusStore;
  schedule: ScheduledSends;
  close(): Promise<void>;
}

/** Margin over PUBLISH_TIMEOUT_MS after which a pending claim is considered abandoned. */
const CLAIM_STALE_MARGIN_MS = 5000;

export async function startIngress(cfg: Config, opts: { logger?: Logger } = {}): Promise<Ingress> {
  const rt = await createRuntime(cfg, { service: 'ingress', metrics: IngressMetrics, logger: opts.logger });
  let closing: Promise<void> | null = null;
  const staleMs = cfg.publishTimeoutMs + CLAIM_STALE_MARGIN_MS;
  const admission = new Admission(rt.broker, cfg.ingressMaxInFlight, rt.metrics);
  const status = new StatusStore(rt);
  const schedule = new ScheduledSends(rt);
  // BullMQ re-emits each error of the queue's connection (rt.redis) and, without a listener, prints
  // it to stderr with its stack: a warn line when an outage begins, and a minute apart at most while
  // it lasts, instead (as the runtime does for the connection itself, 'redis: error; …').
  logOutages(rt.log.child({ component: 'scheduled-sends' }), 'scheduled-send queue', schedule.queue, rt.redis);
  const acceptor = new Acceptor({ rt, admission, status, schedule, idempotency: new Claims(rt.redis, cfg.idempotencyTtlS, staleMs, cfg) });
  const intake = new WebhookIntake({ rt, admission, status, claims: new Claims(rt.redis, cfg.webhookDedupTtlS, staleMs) });
  const app = createApp({ rt, acceptor, intake, status, ready: () => !closing });
  const server = http.createServer(app);
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  let metrics: Awaited<ReturnType<typeof serveMetrics>> | undefined;
  const steps: Array<[string, () => Promise<unknown>]> = [
    [
      'stop accepting',
      () =>
        new Promise<void>((r) => {
          server.close(() => r());
          server.closeIdleConnections();
        }),
    ],
    ['close scheduled-send queue', () => schedule.close()],
    ['close metrics', async () => metrics?.close()],
    ['close broker and redis', () => rt.close()],
  ];
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(cfg.ingressPort, cfg.ingressHost, () => resolve());
    });
    metrics = await serveMetrics(rt.metrics, cfg.metricsPort, rt.health, cfg.ingressHost);
  } catch (err) {
    await runSteps(rt.log, steps);
    throw err;
  }
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : cfg.ingressPort;
  rt.log.info({ port, metricsPort: metrics.port }, 'ingress listening');
  return {
    rt,
    port,
    url: `http://127.0.0.1:${port}`,
    metricsPort: metrics.port,
    admission,
    status,
    schedule,
    close: () => (closing ??= runSteps(rt.log, steps)),
  };
}
