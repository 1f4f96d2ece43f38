/**
 * Contacts messages: one or more contact cards. Each needs `name.formatted_name` and, beside it, at
 * least one other part of the name (Meta's rule); phones, emails, urls, addresses, org and birthday
 * are optional.
 * https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages#contacts-object
 */
import { z } from 'zod';

const text = z.string().min(1).max(1000);
const opt = text.optional();

const name = z
  .object({ formatted_name: text, first_name: opt, last_name: opt, middle_name: opt, suffix: opt, prefix: opt })
  .strict()
  .refine((n) => Object.keys(n).some((k) => k !== 'formatted_name'), {
    message: 'needs at least one of first_name, last_name, middle_name, suffix, prefix beside formatted_name',
  });

const address = z.object({ street: opt, city: opt, state: opt, zip: opt, country: opt, country_code: opt, type: opt }).strict();

const contact = z
  .object({
    name,
    addresses: z.array(address).optional(),
    birthday: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date as YYYY-MM-DD')
      .optional(),
    emails: z.array(z.object({ email: text, type: opt }).strict()).optional(),
    org: z.object({ company: opt, department: opt, title: opt }).strict().optional(),
    phones: z
      .array(
        z
          .object({
            phone: text,
            type: opt,
            wa_id: z
              .string()
              .regex(/^\d{6,20}$/, 'must be a WhatsApp id, digits only')
              .optional(),
          })
          .strict(),
      )
      .optional(),
    urls: z.array(z.object({ url: text, type: opt }).strict()).optional(),
  })
  .strict();

export const contacts = z.array(contact).min(1, 'must hold at least one contact').max(257);
