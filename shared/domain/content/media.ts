/**
 * Media messages (image, audio, video, document, sticker): one uploaded media `id` or a public
 * `link`, never both; a caption only where WhatsApp shows one (image, video, document), a file name
 * only on a document.
 * https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages#media-object
 */
import { z } from 'zod';

const CAPTION_MAX = 1024;

/** WhatsApp fetches the link itself, over HTTP(S) only. */
export const httpUrl = () => z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' });

const base = { id: z.string().min(1).optional(), link: httpUrl().optional() };
const caption = z.string().max(CAPTION_MAX);

const exactlyOne = (m: { link?: string; id?: string }) => (m.link === undefined) !== (m.id === undefined);

function media<T extends z.ZodRawShape>(extra: T) {
  return (
    z
      .object({ ...base, ...extra })
      .strict()
      .refine((m) => exactlyOne(m as { link?: string; id?: string }), { message: 'needs exactly one of link or id' })
      // The refinement in JSON Schema, for the OpenAPI document (zod copies metadata into it).
      .meta({ oneOf: [{ required: ['link'] }, { required: ['id'] }] })
  );
}

/** Media by id or link and nothing else: audio, stickers, interactive headers. */
export const mediaRef = media({});

/** The media object of each media type, by type. */
export const MEDIA = {
  image: media({ caption: caption.optional() }),
  video: media({ caption: caption.optional() }),
  document: media({ caption: caption.optional(), filename: z.string().min(1).max(240).optional() }),
  audio: mediaRef,
  sticker: mediaRef,
} as const;
