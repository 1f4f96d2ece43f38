/**
 * The ingress's HTTP plumbing: the error body every route answers with, bearer auth, content-type
 * and body-size checks, and the one error handler that turns thrown errors into status codes.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { timingSafeEqual } from 'node:crypto';
import { BrokerUnavailableError } from '../../shared/broker.js';
import type { Runtime } from '../../shared/runtime.js';
import { UnavailableError } from './admission.js';
import { RequestError } from './request-error.js';

export const MAX_BODY = '1mb';

/** `{ error, message, field? }`: `error` is a stable code, `field` names the bad part of the body. */
export function problem(res: Response, status: number, error: string, message: string, field?: string): void {
  res.status(status).json({ error, message, ...(field ? { field } : {}) });
}

/** Constant-time comparison of two secrets (lengths may differ). */
export function secretEquals(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  return m !== null && secretEquals(m[1], token);
}

/** The metrics label of a route: its pattern, never the raw path (ids would explode the series). */
function routeOf(req: Request): string {
  return (req.route?.path as string | undefined) ?? req.path.replace(/\/[0-9A-Za-z]{20,}$/, '/:id');
}

export function reject(rt: Runtime, req: Request, status: number): void {
  rt.metrics.rejectedRequests.inc({ route: routeOf(req), status: String(status) });
}

export function bearerAuth(rt: Runtime): RequestHandler {
  return (req, res, next) => {
    if (bearerMatches(req.get('authorization'), rt.cfg.ingressApiToken)) return next();
    reject(rt, req, 401);
    res.set('WWW-Authenticate', 'Bearer');
    problem(res, 401, 'unauthorized', 'missing or wrong bearer token in Authorization');
  };
}

/**
 * 415 unless the body is declared application/json (any charset parameter is checked by the
 * parser); 400 for an empty one, which the parser would otherwise read as `{}`.
 */
export function requireJson(rt: Runtime): RequestHandler {
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
export function unavailable(rt: Runtime, req: Request, res: Response, message: string, outcomeUnknown = false): void {
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
export function errorHandler(rt: Runtime) {
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
