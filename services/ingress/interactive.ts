/**
 * Interactive messages checked to the Cloud API's rules before they are accepted, so a bad button
 * is a 400 naming its field now rather than a permanent failure in the DLQ later. The envelope
 * schema keeps `action` open (the bot handler's replies and the rarer types pass through it); the
 * common bot types are checked here: reply buttons, lists and call-to-action URLs.
 * https://developers.facebook.com/docs/whatsapp/cloud-api/messages/interactive-reply-buttons-messages
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

/** Throws RequestError naming the field when an interactive message breaks the Cloud API's rules. */
export function checkInteractive(content: OutboundContent, path: string): void {
  if (content.type !== 'interactive') return;
  const i = content.interactive;
  const root = join(path, 'interactive');
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
