/**
 * Meta's Graph API error shape and the Cloud API error codes the simulator can answer with.
 *
 * HTTP statuses follow Meta's error-code reference (developers.facebook.com/documentation/
 * business-messaging/whatsapp/support/error-codes), which tells clients to handle errors by
 * `error.code`, not by HTTP status. Copies of that table disagree on the throttles: older ones list
 * 400 for 130429/131056, recent ones (and Meta's advice to retry 131056 on HTTP 429) say 429. The
 * simulator answers 429, and any client that classifies by code works with either.
 */
import { randomBytes } from 'node:crypto';

export interface MetaErrorBody {
  error: {
    message: string;
    type: string;
    code: number;
    error_subcode: number;
    error_data?: { messaging_product: 'whatsapp'; details: string };
    fbtrace_id: string;
  };
}

export interface CatalogueEntry {
  /** The HTTP status Meta answers this code with. */
  status: number;
  title: string;
  details: string;
  /**
   * Graph API subcode where one is known. Meta stopped sending subcodes for most errors in v16+; the
   * simulator always sends the field (the provider contract lists it) with 0 where Meta's value is not known.
   */
  subcode?: number;
}

export const INVALID_PARAMETER = 100;
export const ACCESS_TOKEN_INVALID = 190;
export const THROUGHPUT_LIMIT = 130429;
export const PAIR_RATE_LIMIT = 131056;

export const ERROR_CATALOGUE: Readonly<Record<number, CatalogueEntry>> = {
  1: { status: 400, title: 'API Unknown', details: 'Invalid request or possible server error.' },
  2: { status: 503, title: 'API Service', details: 'Temporary due to downtime or due to being overloaded.' },
  4: { status: 429, title: 'API Too Many Calls', details: 'The app has reached its API call rate limit.' },
  100: { status: 400, title: 'Invalid parameter', details: 'The request included one or more unsupported or misspelled parameters.' },
  190: { status: 401, title: 'Invalid OAuth access token', details: 'Error validating access token.', subcode: 467 },
  368: {
    status: 403,
    title: 'Temporarily blocked for policies violations',
    details: 'The WhatsApp Business Account has been restricted or disabled for violating a platform policy.',
  },
  80007: { status: 429, title: 'Rate limit issues', details: 'The WhatsApp Business Account has reached its rate limit.' },
  130429: {
    status: 429,
    title: 'Rate limit hit',
    details: 'Message failed to send because there were too many messages sent from this phone number in a short period of time.',
    subcode: 2494055,
  },
  131000: { status: 500, title: 'Something went wrong', details: 'Message failed to send due to an unknown error.' },
  131008: { status: 400, title: 'Required parameter is missing', details: 'The request is missing a required parameter.' },
  131009: { status: 400, title: 'Parameter value is not valid', details: 'One or more parameter values are invalid.' },
  131016: { status: 503, title: 'Service unavailable', details: 'A service is temporarily unavailable.' },
  131021: { status: 400, title: 'Recipient cannot be sender', details: 'Sender and recipient phone number is the same.' },
  131026: {
    status: 400,
    title: 'Message undeliverable',
    details: 'Unable to deliver message: the recipient is not a WhatsApp user, has not accepted the terms, or uses an old client.',
  },
  131047: {
    status: 400,
    title: 'Re-engagement message',
    details: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.',
    subcode: 2494010,
  },
  131048: {
    status: 429,
    title: 'Spam rate limit hit',
    details: 'Message failed to send because there are restrictions on how many messages can be sent from this phone number.',
  },
  131051: { status: 400, title: 'Unsupported message type', details: 'Unsupported message type.' },
  131056: {
    status: 429,
    title: '(Business Account, Consumer Account) pair rate limit hit',
    details: 'Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.',
  },
  131057: { status: 503, title: 'Account in maintenance mode', details: 'Business Account is in maintenance mode.' },
};

/** The HTTP status Meta uses for `code`, or `fallback` for codes the catalogue does not know. */
export function statusForCode(code: number, fallback = 400): number {
  return ERROR_CATALOGUE[code]?.status ?? fallback;
}

/** An opaque, unique trace id shaped like Meta's (`fbtrace_id` is what Meta support asks for). */
export function fbtraceId(): string {
  return 'A' + randomBytes(16).toString('base64url').slice(0, 22);
}

export interface MetaErrorOptions {
  /** `OAuthException` by default; Graph answers unknown objects with `GraphMethodException`. */
  type?: string;
  /** Overrides the catalogue title; Meta prefixes it with `(#code)`. */
  message?: string;
  details?: string;
  subcode?: number;
}

/** Builds `{"error":{...}}` exactly as the Graph API shapes it, for any code. */
export function metaError(code: number, opts: MetaErrorOptions = {}): MetaErrorBody {
  const known = ERROR_CATALOGUE[code];
  const title = opts.message ?? known?.title ?? 'Simulated error';
  const details = opts.details ?? known?.details;
  const subcode = opts.subcode ?? known?.subcode ?? 0;
  return {
    error: {
      message: title.startsWith('(#') ? title : `(#${code}) ${title}`,
      type: opts.type ?? 'OAuthException',
      code,
      error_subcode: subcode,
      ...(details === undefined ? {} : { error_data: { messaging_product: 'whatsapp' as const, details } }),
      fbtrace_id: fbtraceId(),
    },
  };
}
