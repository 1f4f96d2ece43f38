/**
 * A dead letter as the replayer and the CLI see it: one DLQ delivery decoded into its failure, where
 * it came from and its envelope. Two kinds arrive in the DLQ (docs/ARCHITECTURE.md, "Failures"):
 *
 * - **fleet** dead letters, published by a stage worker with the `x-postmaster-*` failure headers
 *   (`shared/failures/router.ts`);
 * - **broker** dead letters, dead-lettered by a lane queue itself (quorum `x-delivery-limit` exceeded
 *   by a consumer that kept crashing). They carry no failure headers of their own, only the broker's
 *   `x-death`; they count as class `poison`, code `delivery-limit`, and go back to the lane of the
 *   queue they died in, keyed by the routing key x-death kept.
 */
import { createHash } from 'node:crypto';
import type { ConsumeMessage } from 'amqplib';
import { H, parseEnvelope, type Envelope } from '../../shared/domain/envelope.js';
import { FAILURE_CLASSES, type FailureClass } from '../../shared/failures/errors.js';
import type { LaneIndex, LaneRef } from './lanes.js';

/** Earlier failures of a replayed message, a JSON array oldest first: the failure headers move here on replay. */
export const HISTORY_HEADER = 'x-postmaster-history';
/** The end of a pass's snapshot: a message the pass itself put at the DLQ's tail when it began. */
export const MARKER_HEADER = 'x-postmaster-replay-marker';
/** The pass that moved this kept dead letter to the DLQ's tail. */
export const ROTATED_BY_HEADER = 'x-postmaster-rotated-by';

export type DeadLetterClass = FailureClass | 'unknown';

/** One entry of the broker's `x-death` header (most recent first). */
export interface Death {
  queue: string;
  reason: string;
  count: number;
  exchange: string;
  routingKeys: string[];
  /** Epoch milliseconds. */
  time: number | null;
}

/** A failure that happened before the message was last replayed. */
export interface HistoryEntry {
  stage: string | null;
  lane: string | null;
  class: string;
  code: string;
  message: string;
  attempt: number;
  firstFailureAt: string | null;
  lastFailureAt: string | null;
  deaths?: Death[];
  replayedAt: string;
  job: string;
}

export interface Origin extends LaneRef {
  exchange: string;
  routingKey: string;
}

export interface DeadLetter {
  msg: ConsumeMessage;
  /** Identity of this dead letter in a pass's Redis sets: envelope id + a digest of its body and failure. */
  key: string;
  /** Envelope id (from the body, else the AMQP message_id). */
  id: string | null;
  source: 'fleet' | 'broker';
  stage: string | null;
  lane: string | null;
  user: string | null;
  failureClass: DeadLetterClass;
  code: string;
  message: string;
  attempt: number;
  replays: number;
  firstFailureAt: number | null;
  /** When it (last) failed, epoch ms: the age filters and buckets measure from here. */
  failedAt: number | null;
  /** Where a replay republishes it; null when the headers name no lane of this topology. */
  origin: Origin | null;
  deaths: Death[];
  history: HistoryEntry[];
  envelope: Envelope | null;
  /** Why the body is not a valid envelope (poison), or null. */
  bodyError: string | null;
}

const CLASSES: readonly string[] = FAILURE_CLASSES;

function str(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  return Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
}

function num(v: unknown, fallback = 0): number {
  const n = Number(v);
  return Number.isFinite(n) ? n : fallback;
}

function isoMs(v: unknown): number | null {
  const s = str(v);
  if (s === null) return null;
  const t = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
  return Number.isFinite(t) ? t : null;
}

/** amqplib decodes an AMQP timestamp as `{ '!': 'timestamp', value: seconds }`. */
function amqpTime(v: unknown): number | null {
  const raw = v && typeof v === 'object' && 'value' in v ? (v as { value: unknown }).value : v;
  const n = Number(raw);
  return Number.isFinite(n) && raw !== null && raw !== undefined ? n * 1000 : null;
}

export function parseDeaths(v: unknown): Death[] {
  if (!Array.isArray(v)) return [];
  return v
    .filter((d): d is Record<string, unknown> => Boolean(d) && typeof d === 'object')
    .map((d) => ({
      queue: str(d.queue) ?? '',
      reason: str(d.reason) ?? '',
      count: num(d.count, 1),
      exchange: str(d.exchange) ?? '',
      routingKeys: Array.isArray(d['routing-keys']) ? (d['routing-keys'] as unknown[]).map((k) => str(k) ?? '') : [],
      time: amqpTime(d.time),
    }));
}

export function parseHistory(v: unknown): HistoryEntry[] {
  const s = str(v);
  if (!s) return [];
  try {
    const parsed = JSON.parse(s) as unknown;
    return Array.isArray(parsed) ? (parsed as HistoryEntry[]) : [];
  } catch {
    return [];
  }
}

function parseBody(content: Buffer): { envelope: Envelope | null; bodyError: string | null } {
  try {
    return { envelope: parseEnvelope(content), bodyError: null };
  } catch (err) {
    return { envelope: null, bodyError: (err as Error).message };
  }
}

interface Failure {
  source: DeadLetter['source'];
  failureClass: DeadLetterClass;
  code: string;
  message: string;
  failedAt: number | null;
  firstFailureAt: number | null;
  origin: Origin | null;
}

/** The broker killed it in a lane queue: delivery limit (quorum) or a rejection (classic urgent lane). */
function brokerFailure(death: Death, lane: LaneRef, lanes: LaneIndex, user: string | null): Failure {
  const code = death.reason === 'delivery_limit' ? 'delivery-limit' : death.reason || 'dead-lettered';
  return {
    source: 'broker',
    failureClass: 'poison',
    code,
    message: `dead-lettered by the broker from ${death.queue} (${death.reason}, ${death.count}x)`,
    failedAt: death.time,
    firstFailureAt: death.time,
    origin: originOf(lane, lanes.routingKey(lane, user, death.routingKeys[0] ?? null)),
  };
}

function fleetFailure(h: Record<string, unknown>, lanes: LaneIndex, user: string | null, fallbackTime: number | null): Failure {
  const cls = str(h[H.failureClass]);
  const lane = lanes.byExchange(str(h[H.originExchange]) ?? '');
  return {
    source: 'fleet',
    failureClass: cls && CLASSES.includes(cls) ? (cls as FailureClass) : 'unknown',
    code: str(h[H.failureCode]) ?? 'unknown',
    message: str(h[H.failureMessage]) ?? '',
    failedAt: isoMs(h[H.lastFailureAt]) ?? fallbackTime,
    firstFailureAt: isoMs(h[H.firstFailureAt]),
    origin: lane ? originOf(lane, lanes.routingKey(lane, user, str(h[H.originRoutingKey]))) : null,
  };
}

function originOf(lane: LaneRef, routingKey: string | null): Origin | null {
  return routingKey === null ? null : { ...lane, routingKey };
}

function digest(msg: ConsumeMessage, f: Failure, deaths: Death[]): string {
  const h = createHash('sha256').update(msg.content);
  for (const part of [f.code, String(f.failedAt), ...deaths.map((d) => `${d.queue}/${d.reason}/${d.count}/${d.time}`)]) {
    h.update('\0').update(part);
  }
  return h.digest('hex').slice(0, 16);
}

/** Decodes one DLQ delivery. Never throws: whatever is broken about it becomes part of what it says. */
export function decodeDeadLetter(msg: ConsumeMessage, lanes: LaneIndex): DeadLetter {
  const h = (msg.properties.headers ?? {}) as Record<string, unknown>;
  const deaths = parseDeaths(h['x-death']);
  const { envelope, bodyError } = parseBody(msg.content);
  const user = str(h[H.user]) ?? envelope?.user ?? null;
  // x-death lists the most recent death first. If that death happened in a lane queue, the broker
  // dead-lettered the message itself; failure headers it may carry are from an earlier failure.
  const brokerLane = deaths[0] ? lanes.byQueue(deaths[0].queue) : null;
  const stamp = msg.properties.timestamp ? Number(msg.properties.timestamp) * 1000 : null;
  const f = brokerLane ? brokerFailure(deaths[0], brokerLane, lanes, user) : fleetFailure(h, lanes, user, stamp);
  const id = envelope?.id ?? str(msg.properties.messageId);
  return {
    msg,
    key: `${id ?? '-'}:${digest(msg, f, deaths)}`,
    id,
    source: f.source,
    stage: brokerLane?.stage ?? str(h[H.stage]),
    lane: brokerLane?.lane ?? str(h[H.lane]),
    user,
    failureClass: f.failureClass,
    code: f.code,
    message: f.message,
    attempt: num(h[H.attempt], envelope?.attempt ?? 0),
    replays: num(h[H.replays]),
    firstFailureAt: f.firstFailureAt,
    failedAt: f.failedAt,
    origin: f.origin,
    deaths,
    history: parseHistory(h[HISTORY_HEADER]),
    envelope,
    bodyError,
  };
}

/** The pass id of a marker message, or null for a dead letter. */
export function markerOf(msg: ConsumeMessage): string | null {
  return str(msg.properties.headers?.[MARKER_HEADER]);
}
