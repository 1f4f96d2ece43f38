/**
 * The send API: `POST /v1/messages`, `POST /v1/messages/batch` and `GET /v1/messages/:id`, all behind
 * the bearer token (docs/API.md).
 */
import { Router, type Request, type Response } from 'express';
import { businessNumbers } from '../../shared/platform/numbers.js';
import type { Runtime } from '../../shared/amqp/runtime.js';
import type { IngressMetrics } from './metrics.js';
import type { StatusStore } from '../../shared/domain/status.js';
import type { Acceptor, Outcome } from './accept.js';
import { UnavailableError } from './admission.js';
import { bearerAuth, jsonBody, problem, reject, requireJson } from './http.js';
import { CORRELATION_ID_MAX_BYTES, parseBatchRequest, parseSendRequest, RequestError, type ParseOptions } from './request.js';

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

const CORRELATION_HEADER = 'X-Correlation-Id';
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * The X-Correlation-Id header, as the body's correlationId would be: it becomes the AMQP
 * correlation-id. Header bytes carry no charset (Node reads them as Latin-1, so "€" sent as UTF-8
 * arrives as three other characters), hence printable ASCII only; Unicode ids go in the body. A bad
 * header is a 400, not dropped: a client that sets one expects to find it in the logs.
 */
function correlationOf(req: Request): string | undefined {
  const c = req.get('x-correlation-id');
  if (!c) return undefined;
  if (c.length > CORRELATION_ID_MAX_BYTES) {
    throw new RequestError(CORRELATION_HEADER, `${CORRELATION_HEADER}: must be at most ${CORRELATION_ID_MAX_BYTES} bytes (got ${c.length})`);
  }
  if (!PRINTABLE_ASCII.test(c)) {
    throw new RequestError(
      CORRELATION_HEADER,
      `${CORRELATION_HEADER}: must be printable ASCII (space to ~); send other characters in the body's correlationId`,
    );
  }
  return c;
}

/** The body of a single send's answer. */
function single(o: Exclude<Outcome, { status: 503 | 400 }>): Record<string, unknown> {
  switch (o.state) {
    case 'accepted':
      return { id: o.id, status: 'accepted', lane: o.lane, priority: o.priority };
    case 'scheduled':
      return { id: o.id, status: 'scheduled', sendAt: o.sendAt, priority: o.priority };
    case 'duplicate':
      return { id: o.id, status: o.current ?? 'accepted', duplicate: true };
  }
}

export function messagesRouter(rt: Runtime<IngressMetrics>, acceptor: Acceptor, status: StatusStore): Router {
  const router = Router();
  const auth = bearerAuth(rt);
  const json = requireJson(rt);
  const numbers = businessNumbers(rt.cfg);
  const opts = (): ParseOptions => ({ maxAheadS: rt.cfg.scheduleMaxAheadS, numbers });

  router.post('/v1/messages', auth, json, jsonBody, async (req: Request, res: Response) => {
    const correlationId = correlationOf(req);
    const request = parseSendRequest(req.body, '', opts());
    const [o] = await acceptor.accept([{ request, correlationId }]);
    if (o.status === 503) throw new UnavailableError(o.error, 'nack', { outcomeUnknown: o.outcomeUnknown });
    if (o.status === 400) throw new RequestError('(body)', o.error);
    res.status(o.status).json(single(o));
  });

  router.post('/v1/messages/batch', auth, json, jsonBody, async (req: Request, res: Response) => {
    const correlationId = correlationOf(req);
    const items = parseBatchRequest(req.body, opts());
    const valid = items.flatMap((it) => ('request' in it ? [it] : []));
    const outcomes = await acceptor.accept(valid.map((it) => ({ request: it.request, correlationId })));
    const byIndex = new Map(valid.map((it, n) => [it.index, outcomes[n]]));
    const results = items.map((it) => {
      if ('error' in it) return { index: it.index, status: 400, error: it.error.message, field: it.error.field };
      const o = byIndex.get(it.index)!;
      if (o.status === 503) return { index: it.index, status: 503, error: o.error, ...(o.outcomeUnknown ? { outcome: 'unknown' } : {}) };
      if (o.status === 400) return { index: it.index, status: 400, error: o.error, field: `messages.${it.index}` };
      return { index: it.index, status: o.status, id: o.id, state: o.state, ...(o.status === 202 && o.state === 'scheduled' ? { sendAt: o.sendAt } : {}) };
    });
    const count = (s: number) => results.filter((r) => r.status === s).length;
    const summary = { accepted: count(202), duplicates: count(200), rejected: count(400), failed: count(503) };
    const allIn = summary.rejected === 0 && summary.failed === 0;
    if (summary.failed > 0) res.set('Retry-After', String(rt.cfg.ingressRetryAfterS));
    res.status(allIn ? 202 : 207).json({ ...summary, results });
  });

  router.get('/v1/messages/:id', auth, async (req: Request, res: Response) => {
    const id = String(req.params.id);
    const rec = ULID.test(id)
      ? await status.get(id).catch((err: Error) => {
          throw new UnavailableError(`status store unavailable (Redis): ${err.message}`, 'redis', { cause: err });
        })
      : null;
    if (!rec) {
      reject(rt, req, 404);
      return problem(res, 404, 'not_found', `no status record for message ${id} (unknown, or older than the record's TTL)`);
    }
    res.json(rec);
  });

  return router;
}
