/**
 * The bodies of POST /v1/messages and POST /v1/messages/batch: who, what (a Cloud API message
 * object of any type, or a read receipt: content.ts) and how (priority, idempotency, schedule).
 * Every error names its field, e.g. `messages.3.text.body`.
 */
import { z } from 'zod';
import { PRIORITIES, utf8Bytes, type Priority } from '../../shared/domain/envelope.js';
import type { BusinessNumbers } from '../../shared/platform/numbers.js';
import { parseContent, type Content } from '../../shared/domain/content/content.js';
import { join, RequestError, requestErrorOf } from '../../shared/domain/content/request-error.js';

export { RequestError } from '../../shared/domain/content/request-error.js';

export const MAX_BATCH = 500;

/**
 * In bytes, not characters: the correlation id becomes the AMQP correlation-id, a short string of at
 * most 255 bytes (issue #25: 100 × "€" is 100 characters but 300 bytes). 200 leaves room below it.
 */
export const CORRELATION_ID_MAX_BYTES = 200;
/** Part of a Redis key, not of any AMQP property; bounded in bytes all the same, like its sibling. */
export const IDEMPOTENCY_KEY_MAX_BYTES = 200;

/**
 * A string of at most `maxBytes` bytes in UTF-8. An unpaired surrogate has no UTF-8 form: it would
 * reach Redis and the broker as U+FFFD, so two different keys would become one.
 */
function utf8Text(maxBytes: number) {
  return z.string().superRefine((s, ctx) => {
    const lone = /\p{Cs}/u.exec(s);
    if (lone) return ctx.addIssue({ code: 'custom', message: `must be well-formed Unicode (unpaired surrogate at index ${lone.index})` });
    const n = utf8Bytes(s);
    if (n > maxBytes) ctx.addIssue({ code: 'custom', message: `must be at most ${maxBytes} bytes in UTF-8 (got ${n})` });
  });
}

/**
 * Postmaster's own fields of a send request, beside the content: who gets it and how it travels.
 * The OpenAPI document (openapi.ts) is built from this schema too.
 */
export const requestFields = z
  .object({
    // ASCII digits only (`\d` without the u flag), so at most 21 bytes: the user, and routing key, is at most 20.
    to: z
      .string()
      .regex(/^\+?\d{6,20}$/, 'must be a phone number in international format, digits only')
      .describe("The recipient's phone number in international format, digits only (`+` allowed)."),
    priority: z
      .enum(PRIORITIES, { message: `must be one of ${PRIORITIES.join(', ')}` })
      .default('normal')
      .describe("`urgent` skips the user's ordered lane (OTP codes, alerts)."),
    urgency: z.number().int().min(0).max(9).optional().describe('Priority inside the urgent lane (default 5); only with `priority: "urgent"`.'),
    idempotencyKey: utf8Text(IDEMPOTENCY_KEY_MAX_BYTES)
      .min(1)
      .optional()
      .describe(`A repeat within IDEMPOTENCY_TTL_S gets 200 with the first message's id. At most ${IDEMPOTENCY_KEY_MAX_BYTES} bytes in UTF-8.`),
    sendAt: z.iso
      .datetime({ offset: true, message: 'must be an ISO-8601 date-time with a time zone offset (Z or ±hh:mm)' })
      .optional()
      .describe('Send at this time (with a time zone offset), at most SCHEDULE_MAX_AHEAD_S ahead; now or past: at once.'),
    // An id for logs and tracing: control characters have no place in it, and DEL and C1 (which JSON
    // does not escape) reach terminals and plain-text log viewers as they are.
    correlationId: utf8Text(CORRELATION_ID_MAX_BYTES)
      .regex(/^\P{Cc}*$/u, 'must not contain control characters')
      .optional()
      .describe(`An id for logs and tracing, carried as the AMQP correlation-id. At most ${CORRELATION_ID_MAX_BYTES} bytes in UTF-8.`),
    // The business number to send from, by phone number id or alias (shared/platform/numbers.ts); absent: the default.
    from: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe('The business number to send from: its phone number id or alias (WHATSAPP_NUMBERS); absent: the default number.'),
    // The `template` object of a template message, sent instead when the user's 24-hour window is closed.
    fallbackTemplate: z
      .record(z.string(), z.unknown())
      .optional()
      .superRefine((template, ctx) => {
        if (template === undefined) return;
        try {
          parseContent({ type: 'template', template }, '');
        } catch (err) {
          if (!(err instanceof RequestError)) throw err;
          ctx.addIssue({ code: 'custom', message: err.message.slice(err.field.length + 2), path: err.field.split('.').slice(1) });
        }
      })
      .describe("A template object, sent instead when the user's 24-hour customer-service window is closed."),
  })
  .strict();

const META_KEYS = new Set(Object.keys(requestFields.shape));
/** Keys that JSON.parse keeps as own properties but that would reach prototypes once copied. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export interface SendRequest {
  to: string;
  /** The phone number id of the business number to send from (an alias is resolved); absent: the default. */
  from?: string;
  priority: Priority;
  urgency?: number;
  idempotencyKey?: string;
  sendAt?: string;
  correlationId?: string;
  /** A template object (name, language, components) for a closed customer-service window. */
  fallbackTemplate?: Record<string, unknown>;
  content: Content;
}

export interface ParseOptions {
  /** Latest allowed sendAt, as seconds from now. */
  maxAheadS?: number;
  /** The configured business numbers, to resolve `from`; without them `from` must be a phone number id. */
  numbers?: BusinessNumbers;
  now?: number;
}

function assertObject(body: unknown, path: string): asserts body is Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new RequestError(path || '(body)', `${path || '(body)'}: must be a JSON object`);
  }
}

/** Validates one send request; throws RequestError naming the first bad field. */
export function parseSendRequest(body: unknown, path = '', opts: ParseOptions = {}): SendRequest {
  assertObject(body, path);
  const metaPart: Record<string, unknown> = {};
  const contentPart: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (FORBIDDEN_KEYS.has(k)) throw new RequestError(join(path, k), `${join(path, k)}: unknown field`);
    (META_KEYS.has(k) ? metaPart : contentPart)[k] = v;
  }
  if (!('to' in metaPart)) throw new RequestError(join(path, 'to'), `${join(path, 'to')}: is required`);
  const m = requestFields.safeParse(metaPart);
  if (!m.success) throw requestErrorOf(m.error, path);
  if (m.data.urgency !== undefined && m.data.priority !== 'urgent') {
    throw new RequestError(join(path, 'urgency'), `${join(path, 'urgency')}: only applies when priority is "urgent"`);
  }
  if (m.data.sendAt !== undefined && opts.maxAheadS !== undefined) {
    const ahead = (Date.parse(m.data.sendAt) - (opts.now ?? Date.now())) / 1000;
    if (ahead > opts.maxAheadS) {
      throw new RequestError(join(path, 'sendAt'), `${join(path, 'sendAt')}: may be at most ${opts.maxAheadS} s in the future`);
    }
  }
  const from = m.data.from === undefined ? undefined : resolveFrom(m.data.from, join(path, 'from'), opts.numbers);
  return { ...m.data, ...(from !== undefined ? { from } : {}), content: parseContent(contentPart, path) };
}

/** A `from` as the phone number id it names: a configured id or alias. */
function resolveFrom(ref: string, field: string, numbers: BusinessNumbers | undefined): string {
  if (!numbers) {
    if (/^\d{1,30}$/.test(ref)) return ref;
    throw new RequestError(field, `${field}: must be a phone number id, digits only`);
  }
  const n = numbers.resolve(ref);
  if (!n) throw new RequestError(field, `${field}: ${numbers.notConfigured(ref)}`);
  return n.id;
}

/** One item of a batch: its request, or the error that rejected it. */
export type BatchItem = { index: number; request: SendRequest } | { index: number; error: RequestError };

/**
 * Validates the batch body `{"messages": [...]}` (1..500 items). A malformed envelope throws; a bad
 * item only rejects that item.
 */
export function parseBatchRequest(body: unknown, opts: ParseOptions = {}): BatchItem[] {
  assertObject(body, '');
  for (const k of Object.keys(body)) {
    if (k !== 'messages') throw new RequestError(k, `${k}: unknown field`);
  }
  const items = body.messages;
  if (items === undefined) throw new RequestError('messages', 'messages: is required');
  if (!Array.isArray(items)) throw new RequestError('messages', 'messages: must be an array');
  if (items.length === 0 || items.length > MAX_BATCH) {
    throw new RequestError('messages', `messages: must hold 1 to ${MAX_BATCH} messages, got ${items.length}`);
  }
  return items.map((item, index) => {
    try {
      return { index, request: parseSendRequest(item, `messages.${index}`, opts) };
    } catch (err) {
      if (err instanceof RequestError) return { index, error: err };
      throw err;
    }
  });
}
