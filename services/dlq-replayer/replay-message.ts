/**
 * The messages a pass publishes: a replayed dead letter (back to its lane), a kept dead letter
 * (moved to the DLQ's tail) and the pass's marker.
 *
 * A replayed message starts a fresh life: `x-postmaster-attempt` 0 and envelope `attempt` 0,
 * `x-postmaster-replays` one up. Its failure headers (class, code, message, first/last failure
 * time, origin) and the broker's `x-death` move into `x-postmaster-history`, a JSON array of earlier
 * failures, so that a new failure is reported on its own and the old ones stay readable (`show`).
 * `x-death` must not travel on: if the message died in shard S by delivery limit and later expires
 * from a retry tier back into S, RabbitMQ would see S in x-death with no rejection in between, take
 * it for a dead-letter cycle and drop the message silently.
 */
import type { Options } from 'amqplib';
import { H } from '../../shared/domain/envelope.js';
import { HISTORY_HEADER, MARKER_HEADER, ROTATED_BY_HEADER, type DeadLetter, type HistoryEntry } from './dead-letter.js';

/** At most this many earlier failures are kept in the history header. */
const MAX_HISTORY = 10;

/** Headers that describe the last failure or the broker's delivery state, not the message. */
const FAILURE_HEADERS = [
  H.failureClass,
  H.failureCode,
  H.failureMessage,
  H.firstFailureAt,
  H.lastFailureAt,
  H.originExchange,
  H.originRoutingKey,
  H.tier,
  H.parked,
  ROTATED_BY_HEADER,
  MARKER_HEADER,
  'x-death',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-first-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
  'x-last-death-exchange',
  'x-delivery-count',
];

export interface Outgoing {
  exchange: string;
  routingKey: string;
  content: Buffer;
  options: Options.Publish;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function historyEntry(dl: DeadLetter, job: string, now: number): HistoryEntry {
  return {
    stage: dl.stage,
    lane: dl.lane,
    class: dl.failureClass,
    code: dl.code,
    message: dl.message,
    attempt: dl.attempt,
    firstFailureAt: iso(dl.firstFailureAt),
    lastFailureAt: iso(dl.failedAt),
    ...(dl.deaths.length ? { deaths: dl.deaths } : {}),
    replayedAt: new Date(now).toISOString(),
    job,
  };
}

/** The same properties, persistent, with new headers. */
function withHeaders(dl: DeadLetter, headers: Record<string, unknown>): Options.Publish {
  const p = dl.msg.properties;
  return {
    persistent: true,
    contentType: p.contentType,
    contentEncoding: p.contentEncoding,
    messageId: p.messageId,
    correlationId: p.correlationId,
    timestamp: p.timestamp,
    priority: p.priority,
    type: p.type,
    appId: p.appId,
    headers,
    mandatory: true,
  };
}

/** The body with envelope `attempt` reset; a body that is not a JSON object travels unchanged. */
function freshBody(dl: DeadLetter): Buffer {
  if (dl.envelope) return Buffer.from(JSON.stringify({ ...dl.envelope, attempt: 0 }));
  try {
    const raw = JSON.parse(dl.msg.content.toString('utf8')) as unknown;
    if (raw && typeof raw === 'object' && !Array.isArray(raw) && 'attempt' in raw) {
      return Buffer.from(JSON.stringify({ ...raw, attempt: 0 }));
    }
  } catch {
    // poison: replayed as it is
  }
  return dl.msg.content;
}

export function replayMessage(dl: DeadLetter, job: string, now = Date.now()): Outgoing {
  if (!dl.origin) throw new Error(`dead letter ${dl.id ?? dl.key} names no lane to replay to`);
  const headers: Record<string, unknown> = { ...(dl.msg.properties.headers ?? {}) };
  for (const h of FAILURE_HEADERS) delete headers[h];
  const history = [...dl.history, historyEntry(dl, job, now)].slice(-MAX_HISTORY);
  Object.assign(headers, {
    [H.lane]: dl.origin.lane,
    [H.route]: dl.origin.lane,
    [H.stage]: dl.origin.stage,
    [H.attempt]: 0,
    [H.replays]: dl.replays + 1,
    [HISTORY_HEADER]: JSON.stringify(history),
    ...(dl.user ? { [H.user]: dl.user } : {}),
  });
  return { exchange: dl.origin.exchange, routingKey: dl.origin.routingKey, content: freshBody(dl), options: withHeaders(dl, headers) };
}

/** A kept dead letter, unchanged but for who moved it, for the DLQ's tail (default exchange). */
export function keptCopy(dl: DeadLetter, passId: string, dlq: string): Outgoing {
  const headers: Record<string, unknown> = { ...(dl.msg.properties.headers ?? {}), [ROTATED_BY_HEADER]: passId };
  delete headers['x-delivery-count'];
  return { exchange: '', routingKey: dlq, content: dl.msg.content, options: withHeaders(dl, headers) };
}

export function markerMessage(passId: string, jobId: string, dlq: string): Outgoing {
  return {
    exchange: '',
    routingKey: dlq,
    content: Buffer.from(JSON.stringify({ marker: passId, job: jobId, at: new Date().toISOString() })),
    options: {
      persistent: true,
      contentType: 'application/json',
      messageId: `replay-marker-${passId}`,
      timestamp: Math.floor(Date.now() / 1000),
      headers: { [MARKER_HEADER]: passId },
      mandatory: true,
    },
  };
}
