/**
 * The content of a send request: a Cloud API message object of any type the Cloud API takes, or a
 * read receipt, checked to Meta's rules and then delivered as it is (the sender posts it unchanged).
 * Three passes, in this order on purpose: the outline of each type (a strict schema whose open parts,
 * interactive actions and template components, are not walked), then size and depth (so that no
 * recursive walk ever meets a 10,000-level body), then the rules inside the open parts.
 * https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages
 */
import { z } from 'zod';
import { MAX_CONTENT_BYTES, MAX_CONTENT_DEPTH, tooDeep, utf8Bytes } from '../envelope.js';
import { contacts } from './contacts.js';
import { checkInteractive, interactive, type Interactive } from './interactive.js';
import { location } from './location.js';
import { MEDIA } from './media.js';
import { reaction } from './reaction.js';
import { isReadReceipt, readReceipt } from './read-receipt.js';
import { join, requestErrorOf, RequestError } from './request-error.js';
import { checkTemplate, template, type Template } from './template.js';

const TEXT_BODY_MAX = 4096;

/** The object each message type carries under its own name (`{"type": "image", "image": {…}}`). */
const TYPE_OBJECTS = {
  text: z.object({ body: z.string().min(1).max(TEXT_BODY_MAX), preview_url: z.boolean().optional() }).strict(),
  template,
  ...MEDIA,
  location,
  contacts,
  interactive,
  reaction,
} as const satisfies Record<string, z.ZodType>;

export type MessageType = keyof typeof TYPE_OBJECTS;
export const MESSAGE_TYPES = Object.keys(TYPE_OBJECTS) as MessageType[];

/** Any message may reply to an earlier one: WhatsApp shows it quoted. */
const context = z.object({ message_id: z.string().min(1).max(512) }).strict();

/** The type of a message that names none, as in the Cloud API. */
export const DEFAULT_TYPE: MessageType = 'text';

/** One strict schema per type: `type`, the type's object, and an optional `context`. */
export const MESSAGE_SCHEMAS: ReadonlyMap<string, z.ZodObject> = new Map(
  MESSAGE_TYPES.map((t) => [t, z.object({ type: z.literal(t), [t]: TYPE_OBJECTS[t], context: context.optional() }).strict()]),
);

/** Content as accepted: the Cloud API message object (or read receipt) the sender will post. */
export type Content = Record<string, unknown>;

/**
 * Validates the content part of a send request (everything but `to`, `priority` and the other
 * request fields); a message without `type` is text, as in the Cloud API. Throws RequestError naming
 * the first bad field.
 */
export function parseContent(part: Record<string, unknown>, path: string): Content {
  const content = isReadReceipt(part) ? part : { type: DEFAULT_TYPE, ...part };
  const schema = isReadReceipt(content) ? readReceipt : MESSAGE_SCHEMAS.get(content.type as string);
  if (!schema) {
    const field = join(path, 'type');
    throw new RequestError(field, `${field}: must be one of ${MESSAGE_TYPES.join(', ')}`);
  }
  const r = schema.safeParse(content);
  if (!r.success) throw requestErrorOf(r.error, path);
  bound(content, path);
  if (content.type === 'interactive') checkInteractive(content.interactive as Interactive, path);
  if (content.type === 'template') checkTemplate(content.template as Template, path);
  return content;
}

/** Bounds on any content: nesting (JSON.stringify overflows the stack far down) and size as JSON. */
function bound(content: Content, path: string): void {
  const deep = tooDeep(content, MAX_CONTENT_DEPTH);
  if (deep) {
    const field = deep.reduce<string>((p, k) => join(p, k), path);
    throw new RequestError(field, `${field}: nested deeper than ${MAX_CONTENT_DEPTH} levels`);
  }
  const n = utf8Bytes(JSON.stringify(content));
  if (n > MAX_CONTENT_BYTES) {
    const field = join(path, typeof content.type === 'string' ? content.type : 'message_id');
    throw new RequestError(field, `${field}: the message content must be at most ${MAX_CONTENT_BYTES} bytes as JSON (got ${n})`);
  }
}
