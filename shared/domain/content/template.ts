/**
 * Template messages: a template approved by Meta, by name and language, with the values of its
 * parameters. The components' parameters are checked to the Cloud API's limits once the content's
 * size and depth are known to be sane (content.ts).
 * https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages#template-object
 */
import { z } from 'zod';
import { join, requestErrorOf, RequestError } from './request-error.js';

/** At most this many components in a template. */
export const MAX_COMPONENTS = 20;

export const template = z
  .object({
    name: z.string().min(1).max(512),
    language: z.object({ code: z.string().min(2).max(15), policy: z.literal('deterministic').optional() }).strict(),
    components: z.array(z.record(z.string(), z.unknown())).max(MAX_COMPONENTS).optional(),
  })
  .strict();
export type Template = z.infer<typeof template>;

const templateParameter = z.looseObject({ type: z.string().min(1), text: z.string().optional() });
/** Meta: `index` 0–9 (up to 10 buttons), often sent as a string; a carousel holds up to 10 cards. */
export const templateComponent = z.looseObject({
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
export function checkTemplate(t: Template, path: string): void {
  const components = t.components ?? [];
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
