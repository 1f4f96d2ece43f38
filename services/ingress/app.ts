/**
 * The ingress HTTP surface (express): the send API, health and metrics.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { timingSafeEqual } from 'node:crypto';
import { BrokerUnavailableError } from '../../shared/broker.js';
import { newEnvelope, type Envelope } from '../../shared/envelope.js';
import { publishToStage } from '../../shared/publish.js';
import type { Runtime } from '../../shared/runtime.js';
import { parseSendRequest, RequestError, type SendRequest } from './request.js';

export interface IngressDeps {
  rt: Runtime;
  ready: () => boolean;
}

const RETRY_AFTER_S = 5;

function problem(res: Response, status: number, error: string, message: string, field?: string): void {
  res.status(status).json({ error, message, ...(field ? { field } : {}) });
}

export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function envelopeFor(req: SendRequest, correlationId?: string): Envelope {
  return newEnvelope({
    kind: 'outbound',
    user: req.to.replace(/^\+/, ''),
    priority: req.priority,
    ...(req.urgency !== undefined ? { urgency: req.urgency } : {}),
    payload: req.content as unknown as Record<string, unknown>,
    ...(req.idempotencyKey ? { idempotencyKey: req.idempotencyKey } : {}),
    ...(req.sendAt ? { sendAt: req.sendAt } : {}),
    ...((req.correlationId ?? correlationId) ? { correlationId: req.correlationId ?? correlationId } : {}),
  });
}

export function createApp({ rt, ready }: IngressDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const log = rt.log.child({ component: 'http' });

  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/readyz', (_req, res) => {
    const ok = ready();
    res.status(ok ? 200 : 503).json({ ready: ok, broker: rt.broker.connected(), blocked: rt.broker.blocked() });
  });
  app.get('/metrics', async (_req, res) => {
    const { contentType, body } = await rt.metrics.render();
    res.type(contentType).send(body);
  });

  const auth = (req: Request, res: Response, next: NextFunction) => {
    if (!bearerMatches(req.get('authorization'), rt.cfg.ingressApiToken)) {
      rt.metrics.rejectedRequests.inc({ route: req.path, status: '401' });
      res.set('WWW-Authenticate', 'Bearer');
      return problem(res, 401, 'unauthorized', 'missing or wrong bearer token in Authorization');
    }
    next();
  };
  const json = express.json({ limit: '1mb', strict: false, type: () => true });
  const requireJson = (req: Request, res: Response, next: NextFunction) => {
    if (!req.is('application/json')) {
      rt.metrics.rejectedRequests.inc({ route: req.path, status: '415' });
      return problem(res, 415, 'unsupported_media_type', 'Content-Type must be application/json');
    }
    next();
  };

  app.post('/v1/messages', auth, requireJson, json, async (req, res) => {
    let parsed: SendRequest;
    try {
      parsed = parseSendRequest(req.body);
    } catch (err) {
      const e = err as RequestError;
      rt.metrics.rejectedRequests.inc({ route: '/v1/messages', status: '400' });
      return problem(res, 400, 'invalid_request', e.message, e.field);
    }
    const env = envelopeFor(parsed, req.get('x-correlation-id') ?? undefined);
    const lane = await publishToStage(rt, 'dispatch', env);
    rt.metrics.accepted.inc({ kind: env.kind, lane });
    res.status(202).json({ id: env.id, status: 'accepted', lane, priority: env.priority });
  });

  app.use((_req: Request, res: Response) => problem(res, 404, 'not_found', 'no such route'));
  // Express 5 forwards rejected async handlers here.
  app.use((err: Error & { status?: number; type?: string }, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof BrokerUnavailableError) {
      rt.metrics.rejectedRequests.inc({ route: req.path, status: '503' });
      res.set('Retry-After', String(RETRY_AFTER_S));
      return problem(res, 503, 'unavailable', `message not accepted: ${err.message}; retry later`);
    }
    if (err.type === 'entity.too.large') return problem(res, 413, 'payload_too_large', 'body exceeds 1 MB');
    if (err.type === 'entity.parse.failed') return problem(res, 400, 'invalid_json', `body is not valid JSON: ${err.message}`, '(body)');
    if (err.status && err.status >= 400 && err.status < 500) return problem(res, err.status, 'bad_request', err.message);
    log.error({ err: err.message }, 'unhandled error');
    problem(res, 500, 'internal', 'internal error');
  });
  return app;
}
