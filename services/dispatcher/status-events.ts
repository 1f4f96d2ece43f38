/**
 * Status webhooks (sent / delivered / read / failed) applied to the message's status record. A status
 * carries the wamid and, for messages we sent, `biz_opaque_callback_data` = the envelope id; either
 * finds the record. Statuses of messages we hold no record of (sent by something else, or expired)
 * are dropped, never invented.
 */
import type { Envelope } from '../../shared/domain/envelope.js';
import { TransientError } from '../../shared/failures/errors.js';
import type { Logger } from '../../shared/platform/logger.js';
import type { MessageStatus, StatusError, StatusStore } from '../../shared/domain/status.js';

/** WhatsApp's status names that map onto ours; anything else (e.g. "deleted") is ignored. */
const META_STATUSES: Record<string, MessageStatus> = { sent: 'sent', delivered: 'delivered', read: 'read', failed: 'failed' };

interface MetaStatus {
  id?: unknown;
  status?: unknown;
  timestamp?: unknown;
  biz_opaque_callback_data?: unknown;
  errors?: Array<{ code?: unknown; title?: unknown; message?: unknown; error_data?: { details?: unknown } }>;
}

export function statusErrorOf(s: MetaStatus): StatusError | undefined {
  const e = Array.isArray(s.errors) ? s.errors[0] : undefined;
  if (!e) return undefined;
  const details = e.error_data?.details;
  return {
    ...(e.code !== undefined ? { code: String(e.code) } : {}),
    message: String(e.message ?? e.title ?? 'failed'),
    ...(typeof details === 'string' ? { details: details.slice(0, 500) } : {}),
  };
}

export type StatusOutcome = 'moved' | 'stale' | 'unknown-message' | 'ignored';

/** Applies one status event. Redis failures are transient: the event is retried through the tiers. */
export async function applyStatusEvent(store: StatusStore, env: Envelope, log: Logger): Promise<StatusOutcome> {
  const s = env.payload as MetaStatus;
  const ours = typeof s.status === 'string' ? META_STATUSES[s.status] : undefined;
  if (!ours || typeof s.id !== 'string') {
    log.debug({ status: s.status }, 'status event ignored');
    return 'ignored';
  }
  const opaque = typeof s.biz_opaque_callback_data === 'string' ? s.biz_opaque_callback_data : undefined;
  try {
    const id = await store.resolve(opaque, s.id);
    if (!id) {
      log.debug({ wamid: s.id }, 'status of a message without a record; dropped');
      return 'unknown-message';
    }
    const error = ours === 'failed' ? statusErrorOf(s) : undefined;
    const r = await store.record(id, ours, { wamid: s.id, mustExist: true, ...(error ? { error } : {}) });
    return r === 'missing' ? 'unknown-message' : r;
  } catch (err) {
    throw new TransientError(`status store unavailable: ${(err as Error).message}`, { code: 'redis', cause: err });
  }
}
