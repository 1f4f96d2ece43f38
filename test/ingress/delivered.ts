/**
 * What reached the provider of a send, for the message-type tests: the Cloud API body the simulator
 * recorded, without the fields the sender adds (recipient, callback id), to compare with what the
 * request sent.
 */
import type { Fleet } from '../support/fleet.js';
import { waitFor } from '../support/wait.js';

const POSTMASTER_FIELDS = new Set(['to', 'priority', 'urgency', 'idempotencyKey', 'sendAt', 'correlationId']);

/** The content of a send request as the provider must receive it: a message without `type` is text. */
export function contentOf(request: Record<string, unknown>): Record<string, unknown> {
  const content = Object.fromEntries(Object.entries(request).filter(([k]) => !POSTMASTER_FIELDS.has(k)));
  return content.type === undefined && content.status === undefined ? { type: 'text', ...content } : content;
}

/** Waits for the provider to accept message `id` and returns the content it received. */
export async function delivered(fleet: Fleet, id: string, what: string): Promise<Record<string, unknown>> {
  const entry = await waitFor(() => fleet.sim.accepted().find((e) => e.id === id), { what: `${what} at the provider` });
  const { messaging_product: _mp, recipient_type: _rt, to: _to, biz_opaque_callback_data: _cb, ...content } = entry.body as Record<string, unknown>;
  return content;
}
