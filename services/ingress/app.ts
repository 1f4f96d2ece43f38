/**
 * The ingress's public HTTP surface (express): the send API, Meta's webhook, and bare health
 * answers. /metrics and the detailed health (failing checks and their reasons) are on METRICS_PORT
 * only (service.ts), which is never exposed.
 */
import express from 'express';
import type { Runtime } from '../../shared/amqp/runtime.js';
import type { IngressMetrics } from './metrics.js';
import type { StatusStore } from '../../shared/domain/status.js';
import type { Acceptor } from './accept.js';
import { errorHandler, problem, reject } from './http.js';
import { messagesRouter } from './messages-routes.js';
import { OPENAPI_PATH, renderOpenApi } from './openapi.js';
import { webhookRouter } from './webhook-routes.js';
import type { WebhookIntake } from './webhook-intake.js';

export interface IngressDeps {
  rt: Runtime<IngressMetrics>;
  ready: () => boolean;
  acceptor: Acceptor;
  intake: WebhookIntake;
  status: StatusStore;
}

export function createApp({ rt, ready, acceptor, intake, status }: IngressDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  rt.health.add('service', () => (ready() ? null : 'shutting down'));
  // Probed on the port that serves traffic (Kubernetes, and load balancers that check the serving
  // port), so a wedged or closing listener fails them; the answers say no more than the 503s do.
  app.get('/healthz', (_req, res) => {
    const r = rt.health.liveness();
    res.status(r.ok ? 200 : 503).json({ status: r.ok ? 'ok' : 'stuck' });
  });
  app.get('/readyz', (_req, res) => {
    const r = rt.health.readiness();
    // A resource alarm is the whole broker's: every replica is equally blocked, so it is reported
    // (and answered with 503 + Retry-After) but does not take the pod out of the Service.
    res.status(r.ok ? 200 : 503).json({ ready: r.ok, broker: rt.broker.connected(), blocked: rt.broker.blocked() });
  });

  // The API's description is public, like docs/API.md; built once, on the first request.
  let openApi: string | undefined;
  app.get(OPENAPI_PATH, (_req, res) => {
    res.type('application/json').send((openApi ??= renderOpenApi()));
  });

  app.use(messagesRouter(rt, acceptor, status));
  app.use(webhookRouter(rt, intake));

  app.use((req, res) => {
    reject(rt, req, 404);
    problem(res, 404, 'not_found', 'no such route');
  });
  app.use(errorHandler(rt));
  return app;
}
