/**
 * The schemas of the OpenAPI document (openapi.ts), by their component names. Requests come from
 * the zod schemas that validate them (request.ts, content.ts and the type modules), composed the
 * way `parseSendRequest` applies them: Postmaster's fields beside one message type's content, with
 * the checks of the second pass (interactive actions and headers, template components) put where
 * they apply. Answers are written down here from the route handlers (messages-routes.ts,
 * webhook-routes.ts, http.ts, app.ts).
 */
import { z } from 'zod';
import { PRIORITIES } from '../../shared/domain/envelope.js';
import { STATUSES } from '../../shared/domain/status.js';
import { laneOf } from '../../shared/amqp/topology/names.js';
import { DEFAULT_TYPE, MESSAGE_SCHEMAS } from '../../shared/domain/content/content.js';
import { ACTIONS, header, interactive } from '../../shared/domain/content/interactive.js';
import { readReceipt } from '../../shared/domain/content/read-receipt.js';
import { MAX_BATCH, requestFields } from './request.js';
import { MAX_COMPONENTS, template, templateComponent } from '../../shared/domain/content/template.js';

/** Error codes of the `error` field, as http.ts and the routes answer them. */
export const ERROR_CODES = [
  'invalid_request',
  'invalid_json',
  'bad_request',
  'unauthorized',
  'forbidden',
  'not_found',
  'payload_too_large',
  'unsupported_media_type',
  'unavailable',
  'internal',
] as const;

const pascal = (s: string) => s.replace(/(^|_)(\w)/g, (_m, _u, c: string) => c.toUpperCase());

/** A template as a template message or a fallbackTemplate carries it, its components checked too. */
const templateObject = template.extend({ components: z.array(templateComponent).max(MAX_COMPONENTS).optional() });

/**
 * The interactive object, one variant per `type`: `body` is required and `action` checked where
 * checkInteractive checks them (a list takes only a text header); other types pass as given.
 */
function interactiveObject(): z.ZodType {
  const body = interactive.shape.body.unwrap();
  const textHeader = header.options.find((o) => o.shape.type.value === 'text')!;
  const checked = Object.entries(ACTIONS).map(([type, action]) =>
    interactive.extend({ type: z.literal(type), body, header: (type === 'list' ? textHeader : header).optional(), action }),
  );
  const open = interactive.shape.type.options.filter((t) => !(t in ACTIONS));
  return z.union([...checked, interactive.extend({ type: z.enum(open as [string, ...string[]]) })]);
}

/** The type objects whose checks run in a second pass, as documented. */
function typeObjects(): Record<string, z.ZodType> {
  return { template: templateObject, interactive: interactiveObject() };
}

const fields = () => ({
  ...requestFields.shape,
  fallbackTemplate: templateObject.optional().describe(requestFields.shape.fallbackTemplate.description ?? ''),
});

/** One send request schema per message type (`TextMessage`, …) and the read receipt. */
function sendVariants(): Record<string, z.ZodType> {
  const documented = typeObjects();
  const out: Record<string, z.ZodType> = {};
  for (const [type, schema] of MESSAGE_SCHEMAS) {
    const shape: Record<string, z.ZodType> = { ...fields(), ...schema.shape };
    if (documented[type]) shape[type] = documented[type];
    // A message without `type` is text (content.ts).
    if (type === DEFAULT_TYPE) shape.type = schema.shape.type.optional();
    out[`${pascal(type)}Message`] = z.object(shape).strict().describe(`Postmaster's fields and a message of type \`${type}\`.`);
  }
  out.ReadReceipt = z
    .object({ ...fields(), ...readReceipt.shape })
    .strict()
    .describe('Marks an inbound message as read.');
  return out;
}

const errorBody = z
  .object({
    error: z.enum(ERROR_CODES).describe('A stable code.'),
    message: z.string().describe('What is wrong; for a bad request it starts with the field.'),
    field: z.string().optional().describe('The part of the body (`text.body`, `messages.3.to`, `(body)`) or the header at fault.'),
    outcome: z
      .literal('unknown')
      .optional()
      .describe('On a 503: the publish was sent but not confirmed, so it may have been stored; retry with the same idempotencyKey.'),
  })
  .strict();

const priority = z.enum(PRIORITIES);
const ulid = z
  .string()
  .regex(/^[0-9A-HJKMNP-TV-Z]{26}$/)
  .describe('The message id (a ULID).');
const sendAt = z.string().describe('ISO-8601 date-time the message is due, as sent.');

const accepted = z
  .object({ id: ulid, status: z.literal('accepted'), lane: z.enum([laneOf('send', 'ordered'), laneOf('send', 'urgent')]), priority })
  .strict()
  .describe("Published to the user's send lane and confirmed by the broker.");
const scheduled = z
  .object({ id: ulid, status: z.literal('scheduled'), sendAt, priority })
  .strict()
  .describe('Held until sendAt.');
const duplicate = z
  .object({ id: ulid, status: z.enum(STATUSES), duplicate: z.literal(true) })
  .strict()
  .describe("A repeat of an idempotency key: the first message's id and where it is now; nothing published.");

const batchItem = z.union([
  z.object({ index: z.int().min(0), status: z.literal(202), id: ulid, state: z.enum(['accepted', 'scheduled']), sendAt: sendAt.optional() }).strict(),
  z.object({ index: z.int().min(0), status: z.literal(200), id: ulid, state: z.literal('duplicate') }).strict(),
  z.object({ index: z.int().min(0), status: z.literal(400), error: z.string(), field: z.string() }).strict(),
  z.object({ index: z.int().min(0), status: z.literal(503), error: z.string(), outcome: z.literal('unknown').optional() }).strict(),
]);

const count = z.int().min(0);
const statusRecord = z
  .object({
    id: ulid,
    status: z.enum(STATUSES),
    history: z.array(z.object({ status: z.enum(STATUSES), at: z.string() }).strict()),
    wamid: z.string().optional().describe("WhatsApp's message id, once sent."),
    error: z.object({ code: z.string().optional(), message: z.string(), class: z.string().optional(), details: z.string().optional() }).strict().optional(),
    sendAt: sendAt.optional(),
    duplicateOf: ulid.optional().describe('This message was dropped as a repeat of that one, whose record this is.'),
    fallback: z.string().optional().describe('Why the message went out as its fallbackTemplate: window-closed or 131047.'),
  })
  .strict();

/** Every schema of the document by its name in `components.schemas`. */
export function componentSchemas(): Record<string, z.ZodType> {
  const variants = sendVariants();
  const sendRequest = z.union(Object.values(variants));
  return {
    ...variants,
    SendRequest: sendRequest,
    BatchRequest: z.object({ messages: z.array(sendRequest).min(1).max(MAX_BATCH) }).strict(),
    Template: templateObject,
    Error: errorBody,
    Accepted: accepted,
    Scheduled: scheduled,
    Duplicate: duplicate,
    BatchResult: z.object({ accepted: count, duplicates: count, rejected: count, failed: count, results: z.array(batchItem) }).strict(),
    StatusRecord: statusRecord,
    WebhookNotification: z
      .looseObject({ object: z.string().optional(), entry: z.array(z.record(z.string(), z.unknown())).optional() })
      .describe('Meta\'s notification, as Meta sends it: `entry[].changes[]` with `field: "messages"` carry messages and statuses; the rest is skipped.'),
    WebhookAck: z.object({ received: count, published: count, duplicates: count, skipped: count }).strict(),
    Liveness: z.object({ status: z.enum(['ok', 'stuck']) }).strict(),
    Readiness: z.object({ ready: z.boolean(), broker: z.boolean(), blocked: z.boolean() }).strict(),
  };
}
