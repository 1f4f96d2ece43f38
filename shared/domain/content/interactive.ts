/**
 * Interactive messages checked to the Cloud API's rules before they are accepted, so that a bad
 * button or flow is a 400 naming its field now rather than a permanent failure in the DLQ later.
 * The first pass (`interactive`) only fixes the outline and leaves `action` and `header` open; the
 * actions are checked once the content's size and depth are known to be sane (content.ts): reply
 * buttons, lists, call-to-action URLs, flows, and the headers. Product messages pass as given.
 * https://developers.facebook.com/docs/whatsapp/cloud-api/messages/interactive-reply-buttons-messages
 * https://developers.facebook.com/docs/whatsapp/flows/guides/sendingaflow
 */
import { z } from 'zod';
import { httpUrl, mediaRef } from './media.js';
import { join, requestErrorOf, RequestError } from './request-error.js';

export const interactive = z
  .object({
    type: z.enum(['button', 'list', 'cta_url', 'flow', 'product', 'product_list']),
    body: z
      .object({ text: z.string().min(1).max(1024) })
      .strict()
      .optional(),
    header: z.record(z.string(), z.unknown()).optional(),
    footer: z
      .object({ text: z.string().min(1).max(60) })
      .strict()
      .optional(),
    action: z.record(z.string(), z.unknown()),
  })
  .strict();
export type Interactive = z.infer<typeof interactive>;

const replyButton = z
  .object({
    type: z.literal('reply'),
    reply: z.object({ id: z.string().min(1).max(256), title: z.string().min(1).max(20) }).strict(),
  })
  .strict();

const listRow = z.object({ id: z.string().min(1).max(200), title: z.string().min(1).max(24), description: z.string().max(72).optional() }).strict();

/**
 * A flow by id or by name; `navigate` (the default) opens `flow_action_payload.screen`, whose
 * `data`, if given, must not be empty; `data_exchange` asks the flow's endpoint and takes no payload.
 */
const flowParameters = z
  .object({
    flow_message_version: z.literal('3', { message: 'must be "3"' }),
    flow_token: z.string().min(1).optional(),
    flow_id: z.string().min(1).optional(),
    flow_name: z.string().min(1).optional(),
    flow_cta: z.string().min(1).max(20),
    flow_action: z.enum(['navigate', 'data_exchange']).optional(),
    flow_action_payload: z
      .object({
        screen: z.string().min(1),
        data: z
          .record(z.string(), z.unknown())
          .refine((d) => Object.keys(d).length > 0, { message: 'must not be empty' })
          .optional(),
      })
      .strict()
      .optional(),
    mode: z.enum(['draft', 'published']).optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if ((p.flow_id === undefined) === (p.flow_name === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['flow_id'], message: 'needs exactly one of flow_id or flow_name' });
    } else if (p.flow_action === 'data_exchange' && p.flow_action_payload !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['flow_action_payload'], message: 'must be left out when flow_action is "data_exchange"' });
    } else if (p.flow_action === 'navigate' && p.flow_action_payload === undefined) {
      ctx.addIssue({ code: 'custom', path: ['flow_action_payload'], message: 'is required when flow_action is "navigate"' });
    }
  });

/** The `action` of each interactive type checked here; `product` and `product_list` pass as given. */
export const ACTIONS: Record<string, z.ZodType> = {
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
      parameters: z.object({ display_text: z.string().min(1).max(20), url: httpUrl() }).strict(),
    })
    .strict(),
  flow: z.object({ name: z.literal('flow'), parameters: flowParameters }).strict(),
};

/** A text header holds at most 60 characters; a media header one image, video or document. */
export const header = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text'), text: z.string().min(1).max(60) }).strict(),
  z.object({ type: z.literal('image'), image: mediaRef }).strict(),
  z.object({ type: z.literal('video'), video: mediaRef }).strict(),
  z.object({ type: z.literal('document'), document: mediaRef }).strict(),
]);

/** Throws RequestError naming the field when an interactive message breaks the Cloud API's rules. */
export function checkInteractive(i: Interactive, path: string): void {
  const root = join(path, 'interactive');
  const schema = ACTIONS[i.type];
  if (!schema) return;
  if (i.header !== undefined) {
    const h = header.safeParse(i.header);
    if (!h.success) throw requestErrorOf(h.error, join(root, 'header'));
    if (i.type === 'list' && h.data.type !== 'text') {
      throw new RequestError(join(root, 'header.type'), `${join(root, 'header.type')}: a list message takes only a text header`);
    }
  }
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
