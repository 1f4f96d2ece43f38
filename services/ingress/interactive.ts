/**
 * Content checked to the Cloud API's rules before it is accepted, so that a bad button or template
 * parameter is a 400 naming its field now rather than a permanent failure in the DLQ later. The
 * envelope schema keeps `action` and template components open (the bot handler's replies and the
 * rarer types pass through it) and only bounds their depth and size; the common shapes are checked
 * here: reply buttons, lists, call-to-action URLs, text headers, template parameters.
 * https://developers.facebook.com/docs/whatsapp/cloud-api/messages/interactive-reply-buttons-messages
 * https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages#parameter-object
 */
import { z } from 'zod';
import type { OutboundContent } from '../../shared/envelope.js';
import { join, requestErrorOf, RequestError } from './request-error.js';

const replyButton = z
  .object({
    type: z.literal('reply'),
    reply: z.object({ id: z.string().min(1).max(256), title: z.string().min(1).max(20) }).strict(),
  })
  .strict();

const listRow = z
  .object({ id: z.string().min(1).max(200), title: z.string().min(1).max(24), description: z.string().max(72).optional() })
  .strict();

const ACTIONS = {
  button: z.object({ buttons: z.array(replyButton).min(1).max(3) }).strict(),
  list: z
    .object({
      button: z.string().min(1).max(20),
      sections: z
        .array(z.object({ title: z.string().min(1).max(24).optional(), rows: z.array(listRow).min(1).max(10) }).strict())
        .min(1)
        .max(10),
    })
    .strict(),
  cta_url: z
    .object({
      name: z.literal('cta_url'),
      parameters: z.object({ display_text: z.string().min(1).max(20), url: z.url({ protocol: /^https?$/ }) }).strict(),
    })
    .strict(),
} as const;

/** Only a text header has a length the Cloud API states (60); media headers pass as given. */
const textHeader = z.looseObject({ type: z.literal('text'), text: z.string().min(1).max(60) });

/** Throws RequestError naming the field when an interactive message breaks the Cloud API's rules. */
function checkInteractive(content: OutboundContent, path: string): void {
  if (content.type !== 'interactive') return;
  const i = content.interactive;
  const root = join(path, 'interactive');
  if (i.header?.type === 'text') {
    const h = textHeader.safeParse(i.header);
    if (!h.success) throw requestErrorOf(h.error, join(root, 'header'));
  }
  const schema = (ACTIONS as Record<string, z.ZodType>)[i.type];
  if (!schema) return;
  if (!i.body) throw new RequestError(join(root, 'body'), `${join(root, 'body')}: is required for ${i.type} messages`);
  const r = schema.safeParse(i.action);
  if (!r.success) throw requestErrorOf(r.error, join(root, 'action'));
  if (i.type === 'button') {
    const ids = (i.action.buttons as Array<{ reply: { id: string } }>).map((b) => b.reply.id);
    const dup = ids.findIndex((id, n) => ids.indexOf(id) !== n);
    if (dup >= 0) {
      const field = join(root, `action.buttons.${dup}.reply.id`);
      throw new RequestError(field, `${field}: button ids must be unique`);
    }
  }
  if (i.type === 'list') {
    const rows = (i.action.sections as Array<{ rows: unknown[] }>).reduce((n, s) => n + s.rows.length, 0);
    if (rows > 10) throw new RequestError(join(root, 'action.sections'), `${join(root, 'action.sections')}: at most 10 rows in all`);
  }
}

const templateParameter = z.looseObject({ type: z.string().min(1), text: z.string().optional() });
/** Meta: `index` 0–9 (up to 10 buttons), often sent as a string; a carousel holds up to 10 cards. */
const templateComponent = z.looseObject({
  type: z.string().min(1),
  parameters: z.array(templateParameter).optional(),
  index: z.union([z.number().int().min(0).max(9), z.string().regex(/^\d$/, 'must be 0 to 9')]).optional(),
  cards: z.array(z.record(z.string(), z.unknown())).max(10).optional(),
});

/**
 * The Cloud API's limit on a text parameter: 60 characters in a header; in the body 1,024, or 32,768
 * when the body is the only component.
 */
function textLimit(type: string, bodyOnly: boolean): number | undefined {
  if (type === 'header') return 60;
  if (type === 'body') return bodyOnly ? 32768 : 1024;
  return undefined;
}

/** Throws RequestError naming the component or parameter that the Cloud API would refuse. */
function checkTemplate(content: OutboundContent, path: string): void {
  if (content.type !== 'template') return;
  const components = content.template.components ?? [];
  const root = join(path, 'template.components');
  const bodyOnly = components.every((c) => String(c.type).toLowerCase() === 'body');
  components.forEach((raw, n) => {
    const r = templateComponent.safeParse(raw);
    if (!r.success) throw requestErrorOf(r.error, join(root, n));
    const max = textLimit(r.data.type.toLowerCase(), bodyOnly);
    r.data.parameters?.forEach((p, k) => {
      if (max === undefined || p.type !== 'text' || p.text === undefined || p.text.length <= max) return;
      const field = join(root, `${n}.parameters.${k}.text`);
      throw new RequestError(field, `${field}: must be at most ${max} characters in a ${r.data.type} component (got ${p.text.length})`);
    });
  });
}

/** Every rule of this file that applies to the content's type. */
export function checkContent(content: OutboundContent, path: string): void {
  checkInteractive(content, path);
  checkTemplate(content, path);
}
