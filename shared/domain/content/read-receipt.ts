/**
 * Marking an inbound message as read: Cloud API `{"status": "read", "message_id": "wamid…"}`, with an
 * optional typing indicator. It goes through the send API like a message (to the user who sent the
 * inbound message, so it stays in order with the replies to that user), but has no `type`.
 * https://developers.facebook.com/docs/whatsapp/cloud-api/guides/mark-message-as-read
 */
import { z } from 'zod';

export const readReceipt = z
  .object({
    status: z.literal('read', { message: 'must be "read"' }),
    message_id: z.string().min(1).max(512),
    typing_indicator: z
      .object({ type: z.literal('text') })
      .strict()
      .optional(),
  })
  .strict();

export type ReadReceipt = z.infer<typeof readReceipt>;

/** A send request's content is a read receipt when it carries `status` and no `type`. */
export function isReadReceipt(content: Record<string, unknown>): boolean {
  return content.type === undefined && 'status' in content;
}
