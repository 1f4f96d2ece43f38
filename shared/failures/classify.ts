/**
 * Maps Cloud API answers and network errors to failure classes (docs/ARCHITECTURE.md, "Failures").
 * Codes: https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
 */
import { ClassifiedError, PermanentError, ThrottledError, TransientError, WindowClosedError } from './errors.js';

/** Rate limits: the provider asks us to slow down. */
export const THROTTLE_CODES = new Set([130429, 131056, 80007, 4, 80008]);
/** Temporary provider trouble. */
export const TRANSIENT_CODES = new Set([131057, 131000, 131016, 1, 2, 133004, 131048]);
/** Outside the customer-service window ("Re-engagement message"): only a template gets through. */
export const WINDOW_CLOSED_CODE = 131047;
/** Never succeeds as sent. */
export const PERMANENT_CODES = new Set([
  131026, 131051, 131008, 131009, 131021, 368, 190, 100, 131030, 131031, 131042, 131045, 132000, 132001, 132005, 132007, 132012, 132015, 132016, 133010, 10,
  200, 3,
]);

export interface ProviderErrorBody {
  error?: { message?: string; type?: string; code?: number; error_subcode?: number; fbtrace_id?: string };
}

/** Retry-After as seconds or an HTTP date, in milliseconds. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Classifies a non-2xx Cloud API answer. Rate-limit codes are transient for the message (the sender
 * also slows the whole number down); they count as attempts because the provider did refuse it.
 */
export function classifyProviderError(status: number, body: unknown, retryAfterHeader?: string | string[]): ClassifiedError {
  const e = (body as ProviderErrorBody | undefined)?.error;
  const apiCode = typeof e?.code === 'number' ? e.code : undefined;
  const code = apiCode !== undefined ? String(apiCode) : `http-${status}`;
  const message = `provider answered ${status}${apiCode !== undefined ? ` code ${apiCode}` : ''}: ${e?.message ?? 'no error message'}`;
  const retryAfterMs = parseRetryAfter(retryAfterHeader);
  const details = { code, retryAfterMs };
  if (apiCode !== undefined) {
    if (apiCode === WINDOW_CLOSED_CODE) return new WindowClosedError(message, details);
    if (THROTTLE_CODES.has(apiCode) || TRANSIENT_CODES.has(apiCode)) return new TransientError(message, details);
    if (PERMANENT_CODES.has(apiCode)) return new PermanentError(message, details);
  }
  if (status === 429 || status === 408 || status >= 500) return new TransientError(message, details);
  if (status >= 400) return new PermanentError(message, details);
  return new TransientError(message, details);
}

/** A network-level failure (refused, reset, timeout): the provider may not have seen the message. */
export function classifyNetworkError(err: unknown): ClassifiedError {
  const e = err as { code?: string; name?: string; message?: string };
  const code = e?.code ?? e?.name ?? 'network';
  const timeout = /timeout/i.test(String(code)) || /timeout/i.test(e?.message ?? '');
  return new TransientError(`provider unreachable: ${e?.message ?? code}`, { code: timeout ? 'timeout' : String(code), cause: err });
}

/** Our own limiter said wait (not a failed attempt). */
export function throttled(limit: string, waitMs: number): ThrottledError {
  return new ThrottledError(`rate limit ${limit}: wait ${waitMs} ms`, { code: `limit-${limit}`, retryAfterMs: waitMs });
}

export function isRateLimitCode(code: string): boolean {
  return THROTTLE_CODES.has(Number(code));
}
