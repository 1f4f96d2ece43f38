/**
 * The bodies of POST /v1/messages and POST /v1/messages/batch: who, what (a Cloud API message
 * object) and how (priority, idempotency, schedule). Every error names its field, e.g.
 * `messages.3.text.body`.
 */
import { z } from 'zod';
import { outboundContent, PRIORITIES, type OutboundContent, type Priority } from '../../shared/envelope.js';
import { checkInteractive } from './interactive.js';
import { join, RequestError, requestErrorOf } from './request-error.js';

export { RequestError } from './request-error.js';

export const MAX_BATCH = 500;

const meta = z
  .object({
    to: z.string().regex(/^\+?\d{6,20}$/, 'must be a phone number in international format, digits only'),
    priority: z.enum(PRIORITIES, { message: `must be one of ${PRIORITIES.join(', ')}` }).default('normal'),
    urgency: z.number().int().min(0).max(9).optional(),
    idempotencyKey: z.string().min(1).max(200).optional(),
    sendAt: z.iso.datetime({ offset: true, message: 'must be an ISO-8601 date-time with a time zone offset (Z or ±hh:mm)' }).optional(),
    correlationId: z.string().max(200).optional(),
  })
  .strict();

const META_KEYS = new Set(['to', 'priority', 'urgency', 'idempotencyKey', 'sendAt', 'correlationId']);
/** Keys that JSON.parse keeps as own properties but that would reach prototypes once copied. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export interface SendRequest {
  to: string;
  priority: Priority;
  urgency?: number;
  idempotencyKey?: string;
  sendAt?: string;
  correlationId?: string;
  content: OutboundContent;
}

export interface ParseOptions {
  /** Latest allowed sendAt, as seconds from now. */
  maxAheadS?: number;
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
  const contentPart: Record<string, unknown> = { type: 'text' };
  for (const [k, v] of Object.entries(body)) {
    if (FORBIDDEN_KEYS.has(k)) throw new RequestError(join(path, k), `${join(path, k)}: unknown field`);
    (META_KEYS.has(k) ? metaPart : contentPart)[k] = v;
  }
  if (!('to' in metaPart)) throw new RequestError(join(path, 'to'), `${join(path, 'to')}: is required`);
  const m = meta.safeParse(metaPart);
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
  const c = outboundContent.safeParse(contentPart);
  if (!c.success) throw requestErrorOf(c.error, path);
  checkInteractive(c.data, path);
  return { ...m.data, content: c.data };
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
