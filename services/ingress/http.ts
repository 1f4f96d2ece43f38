/**
 * The ingress's HTTP plumbing: the error body every route answers with, bearer auth, content-type
 * and body-size checks, and the one error handler that turns thrown errors into status codes.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { BrokerUnavailableError } from '../../shared/amqp/broker.js';
import type { Runtime } from '../../shared/amqp/runtime.js';
import type { IngressMetrics } from './metrics.js';
import { UnavailableError } from './admission.js';
import { RequestError } from '../../shared/domain/content/request-error.js';

export const MAX_BODY = '1mb';

/** `{ error, message, field? }`: `error` is a stable code, `field` names the bad part of the body. */
export function problem(res: Response, status: number, error: string, message: string, field?: string): void {
  res.status(status).json({ error, message, ...(field ? { field } : {}) });
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Constant-time comparison of two secrets. Both are hashed first, so neither the time nor an early
 * length check tells a caller how long the expected secret is. An empty expected secret (unset)
 * matches nothing.
 */
export function secretEquals(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected)) && expected !== '';
}

/**
 * Whether `Authorization` carries one of `tokens` (empty entries never match). The scheme is matched
 * case-insensitively (RFC 7235 §2.1); every token is compared, so the time does not say which matched.
 */
export function bearerMatches(header: string | undefined, tokens: readonly string[]): boolean {
  const m = /^bearer +(\S+)$/i.exec(header ?? '');
  if (m === null) return false;
  let ok = false;
  for (const t of tokens) ok = secretEquals(m[1], t) || ok;
  return ok;
}

/** The route label of a request no route matched: one constant value, whatever the path. */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * The metrics label of a request: its route's pattern (`/v1/messages/:id`), never the raw path,
 * which a client chooses (random paths or bad percent-encodings would grow the series without bound).
 */
function routeOf(req: Request): string {
  return (req.route?.path as string | undefined) ?? UNMATCHED_ROUTE;
}

export function reject(rt: Runtime<IngressMetrics>, req: Request, status: number): void {
  rt.metrics.rejectedRequests.inc({ route: routeOf(req), status: String(status) });
}

/** INGRESS_API_TOKEN and, during a rotation, INGRESS_API_TOKEN_PREVIOUS. */
export function bearerAuth(rt: Runtime<IngressMetrics>): RequestHandler {
  const tokens = [rt.cfg.ingressApiToken, rt.cfg.ingressApiTokenPrevious].filter((t) => t !== '');
  return (req, res, next) => {
    if (bearerMatches(req.get('authorization'), tokens)) return next();
    reject(rt, req, 401);
    res.set('WWW-Authenticate', 'Bearer');
    problem(res, 401, 'unauthorized', 'missing or wrong bearer token in Authorization');
  };
}

/**
 * 415 unless the body is declared application/json (any charset parameter is checked by the
 * parser); 400 for an empty one, which the parser would otherwise read as `{}`.
 */
export function requireJson(rt: Runtime<IngressMetrics>): RequestHandler {
  return (req, res, next) => {
    if (!req.is('application/json')) {
      reject(rt, req, 415);
      return problem(res, 415, 'unsupported_media_type', 'Content-Type must be application/json');
    }
    if (req.get('content-length') === '0') {
      reject(rt, req, 400);
      return problem(res, 400, 'invalid_request', '(body): a JSON object is required', '(body)');
    }
    next();
  };
}

export const jsonBody = express.json({ limit: MAX_BODY, strict: false, type: () => true });
/** The raw bytes, for signature checks (Meta signs exactly what it sent). */
export const rawBody = express.raw({ limit: MAX_BODY, type: () => true });

/**
 * Answers 503 with Retry-After: the client (or Meta) should come back later. With `outcomeUnknown`
 * (a confirm timed out) the message may be stored after all: the body says so, and a retry with the
 * same idempotency key is delivered at most once.
 */
export function unavailable(rt: Runtime<IngressMetrics>, req: Request, res: Response, message: string, outcomeUnknown = false): void {
  reject(rt, req, 503);
  res.set('Retry-After', String(rt.cfg.ingressRetryAfterS));
  if (!outcomeUnknown) return problem(res, 503, 'unavailable', `not accepted: ${message}; retry later`);
  res.status(503).json({
    error: 'unavailable',
    outcome: 'unknown',
    message: `not confirmed: ${message}; the message may have been stored: retry with the same idempotencyKey to have it delivered at most once`,
  });
}

type HttpError = Error & { status?: number; type?: string };

/** Express 5 forwards rejected async handlers here. */
export function errorHandler(rt: Runtime<IngressMetrics>) {
  const log = rt.log.child({ component: 'http' });
  return (err: HttpError, req: Request, res: Response, _next: NextFunction): void => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof UnavailableError || err instanceof BrokerUnavailableError) return unavailable(rt, req, res, err.message, err.outcomeUnknown);
    if (err instanceof RequestError) {
      reject(rt, req, 400);
      return problem(res, 400, 'invalid_request', err.message, err.field);
    }
    const status = err.status ?? 500;
    if (status < 500) reject(rt, req, status);
    switch (err.type) {
      case 'entity.too.large':
        return problem(res, 413, 'payload_too_large', `body exceeds ${MAX_BODY.toUpperCase()}`);
      case 'entity.parse.failed':
        return problem(res, 400, 'invalid_json', `(body): not valid JSON: ${err.message}`, '(body)');
      case 'charset.unsupported':
      case 'encoding.unsupported':
        return problem(res, 415, 'unsupported_media_type', err.message);
    }
    if (status >= 400 && status < 500) return problem(res, status, 'bad_request', err.message);
    log.error({ err: err.message, stack: err.stack }, 'unhandled error');
    problem(res, 500, 'internal', 'internal error');
  };
}
