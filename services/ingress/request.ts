/**
 * The body of POST /v1/messages: who, what (a Cloud API message object) and how (priority,
 * idempotency, schedule). Validation errors name the field.
 */
import { z } from 'zod';
import { describeIssue, outboundContent, PRIORITIES, type OutboundContent, type Priority } from '../../shared/envelope.js';

const meta = z
  .object({
    to: z.string().regex(/^\+?\d{6,20}$/, 'must be a phone number in international format, digits only'),
    priority: z.enum(PRIORITIES, { message: `must be one of ${PRIORITIES.join(', ')}` }).default('normal'),
    urgency: z.number().int().min(0).max(9).optional(),
    idempotencyKey: z.string().min(1).max(200).optional(),
    sendAt: z.iso.datetime({ offset: true, message: 'must be an ISO-8601 date-time' }).optional(),
    correlationId: z.string().max(200).optional(),
  })
  .strict();

const META_KEYS = new Set(['to', 'priority', 'urgency', 'idempotencyKey', 'sendAt', 'correlationId']);

export interface SendRequest {
  to: string;
  priority: Priority;
  urgency?: number;
  idempotencyKey?: string;
  sendAt?: string;
  correlationId?: string;
  content: OutboundContent;
}

export class RequestError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

/** Validates one send request; throws RequestError naming the first bad field. */
export function parseSendRequest(body: unknown, path = ''): SendRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new RequestError(path || '(body)', `${path || 'body'} must be a JSON object`);
  }
  const metaPart: Record<string, unknown> = {};
  const contentPart: Record<string, unknown> = { type: 'text' };
  for (const [k, v] of Object.entries(body)) (META_KEYS.has(k) ? metaPart : contentPart)[k] = v;
  if (!('to' in metaPart)) throw new RequestError(join(path, 'to'), `${join(path, 'to')}: is required`);
  const m = meta.safeParse(metaPart);
  if (!m.success) {
    const { field, message } = describeIssue(m.error, path);
    throw new RequestError(field, message);
  }
  if (m.data.urgency !== undefined && m.data.priority !== 'urgent') {
    throw new RequestError(join(path, 'urgency'), `${join(path, 'urgency')}: only applies when priority is "urgent"`);
  }
  const c = outboundContent.safeParse(contentPart);
  if (!c.success) {
    const { field, message } = describeIssue(c.error, path);
    throw new RequestError(field, message);
  }
  return { ...m.data, content: c.data };
}

function join(path: string, field: string): string {
  return path ? `${path}.${field}` : field;
}
