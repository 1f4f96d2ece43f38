/**
 * Reactions: an emoji on an earlier message (`message_id`, a wamid). An empty emoji removes the
 * reaction; anything else must be exactly one emoji, as WhatsApp shows no other text there.
 * https://developers.facebook.com/docs/whatsapp/cloud-api/messages/reaction-messages
 */
import { z } from 'zod';

/**
 * One emoji as Unicode lists it (sequences, skin tones and flags included) or a pictograph with or
 * without its emoji variation selector; '' removes. Built at run time: the `v` flag is newer than
 * the compile target, and Node 20 has it.
 */
const ONE_EMOJI = new RegExp('^(\\p{RGI_Emoji}|\\p{Extended_Pictographic}\\uFE0F?)?$', 'v');

export const reaction = z
  .object({
    message_id: z.string().min(1).max(512),
    emoji: z.string().regex(ONE_EMOJI, 'must be a single emoji, or empty to remove the reaction'),
  })
  .strict();
