/**
 * Message status records (docs/ARCHITECTURE.md, "Public edge (ingress)"): one Redis hash per envelope id, `status:<id>`, with a TTL,
 * that only ever moves forward — accepted → scheduled → dispatched → sent → delivered → read, or to
 * failed / dead-lettered — plus the wamid → envelope id mapping (`wamid:<wamid>`) by which status
 * webhooks find their message.
 *
 * Who records what:
 * - ingress: `accepted` (published at once) or `scheduled` (held until `sendAt`);
 * - dispatcher: `dispatched` (routed to the send lane / handed to the bot handler) and the statuses
 *   of WhatsApp's status webhooks (`sent`, `delivered`, `read`, `failed`, with the error);
 * - sender: `sent` with `{ wamid }` after the Cloud API's 2xx (and `fallback` when the message went
 *   out as its fallback template: the customer-service window was closed);
 * - stage worker: `dead-lettered` with `{ error }` when a message goes to the DLQ.
 *
 * Forward only: a status whose rank is not above the current one is ignored (a late `sent` after
 * `delivered`, a redelivered message's second `dispatched`), atomically in one Lua script. The one
 * way back is a replay: a `dead-lettered` record accepts `dispatched` and later statuses again,
 * because the replayer puts the message back into the pipeline. `wamid` and the mapping are stored
 * even when the status itself is stale, so a webhook that overtook the sender still finds its way.
 *
 * Status records are advisory: callers that have already put a message safely somewhere treat a
 * failed write as a warning, never as a reason to fail the message.
 */
import { failureReason } from '../platform/redact.js';
import { luaScript, type LuaArg } from '../platform/lua-scripts.js';
import type { RedisContext } from '../platform/redis.js';
import { TickBatch } from '../platform/tick-batch.js';

export const STATUSES = ['accepted', 'scheduled', 'dispatched', 'sent', 'delivered', 'read', 'failed', 'dead-lettered'] as const;
export type MessageStatus = (typeof STATUSES)[number];

const RANK: Record<MessageStatus, number> = {
  accepted: 0,
  scheduled: 1,
  dispatched: 2,
  sent: 3,
  delivered: 4,
  read: 5,
  failed: 6,
  'dead-lettered': 6,
};
/** After `dead-lettered`, statuses from this rank on are accepted again (a replay). */
const REPLAY_FROM_RANK = RANK.dispatched;
const MAX_HISTORY = 50;

export function isMessageStatus(s: unknown): s is MessageStatus {
  return typeof s === 'string' && (STATUSES as readonly string[]).includes(s);
}

/**
 * Why a message failed: codes and reasons only. `record` passes `message` and `details` through
 * `failureReason` (no bodies, quoted text or phone numbers, at most MAX_REASON characters), so a
 * record, readable through GET /v1/messages/:id for STATUS_TTL_S, holds nothing of the message.
 */
export interface StatusError {
  code?: string;
  message: string;
  /** Failure class (transient, permanent, poison…) for pipeline failures. */
  class?: string;
  details?: string;
}

/** The error as a record keeps it. */
export function storedError(e: StatusError): StatusError {
  return {
    ...(e.code !== undefined ? { code: e.code } : {}),
    message: failureReason(e),
    ...(e.class !== undefined ? { class: e.class } : {}),
    ...(e.details !== undefined ? { details: failureReason({ message: e.details }) } : {}),
  };
}

export interface StatusFields {
  /** The WhatsApp message id: stored on the record and mapped back to the envelope id. */
  wamid?: string;
  error?: StatusError;
  /** ISO-8601 time a scheduled message is due. */
  sendAt?: string;
  /** Time of the status (ms since epoch); default now. */
  at?: number;
  /** Keep the record at least this long (s); default STATUS_TTL_S. */
  ttlS?: number;
  /** Only update an existing record (status webhooks about messages we do not know). */
  mustExist?: boolean;
}

export interface StatusRecord {
  id: string;
  status: MessageStatus;
  history: Array<{ status: MessageStatus; at: string }>;
  wamid?: string;
  error?: StatusError;
  sendAt?: string;
  /** This message was dropped as a repeat (same idempotency key) of that one, whose record this is. */
  duplicateOf?: string;
  /**
   * Set when the user's customer-service window was closed and the message went out as its
   * fallbackTemplate: why — `window-closed` (Postmaster's check) or `131047` (the Cloud API's answer).
   */
  fallback?: string;
}

export type RecordResult = 'moved' | 'stale' | 'missing';

/**
 * The arguments of one `record` call after its two keys (the record, the wamid mapping), in the order
 * of `record` (lua/status-record.lua): a script that includes it passes them in this order (RecordCall.args).
 */
const RECORD_ARG_NAMES = ['status', 'rank', 'atMs', 'ttlS', 'mustExist', 'replayFromRank', 'wamid', 'errorJson', 'sendAt', 'maxHistory', 'id'] as const;
type RecordArgs = Record<(typeof RECORD_ARG_NAMES)[number], LuaArg>;

/** How many arguments one `record` call takes after its two keys. */
export const RECORD_ARGS = RECORD_ARG_NAMES.length;

// One call records the moves of one turn of the event loop (TickBatch): one round trip for them all.
const RECORD_MANY = luaScript({
  name: 'postmasterStatusRecordMany',
  file: new URL('./lua/status-record-many.lua', import.meta.url),
  each: { keys: ['record', 'wamidMap'], args: RECORD_ARG_NAMES },
  constants: { RECORD_ARGS },
});

/** The keys and arguments of one `record` call (lua/status-record.lua), for this script or one that includes it. */
export interface RecordCall {
  /** The record, and the wamid mapping (the record again when there is no wamid: never touched then). */
  keys: { record: string; wamidMap: string };
  args: RecordArgs;
}

/** The argument names of `record`, in order, for a script that embeds it and repeats them per item. */
export { RECORD_ARG_NAMES };

export function recordResult(n: unknown): RecordResult {
  const v = Number(n);
  return v === 1 ? 'moved' : v === 0 ? 'stale' : 'missing';
}

export class StatusStore {
  private readonly ttlS: number;
  private readonly batch: TickBatch<RecordCall, RecordResult>;

  constructor(private readonly rt: RedisContext) {
    this.ttlS = rt.cfg.statusTtlS;
    const recordMany = RECORD_MANY.bind(rt.redis);
    this.batch = new TickBatch(async (calls) => {
      const out = (await recordMany({ each: calls })) as unknown[];
      return out.map(recordResult);
    });
  }

  private key(id: string): string {
    return this.rt.keys('status', id);
  }

  private wamidKey(wamid: string): string {
    return this.rt.keys('wamid', wamid);
  }

  /**
   * Moves the record of envelope `id` to `status` unless it is already there or further on.
   * @returns 'moved', 'stale' (ignored: not forward) or 'missing' (with `mustExist`, no record).
   */
  async record(id: string, status: MessageStatus, fields: StatusFields = {}): Promise<RecordResult> {
    // With the other records of this turn of the event loop, in one EVALSHA.
    return this.batch.add(this.recordCall(id, status, fields));
  }

  /** What `record` sends: the keys and arguments of the Lua `record`. */
  recordCall(id: string, status: MessageStatus, fields: StatusFields = {}): RecordCall {
    const record = this.key(id);
    const keys = { record, wamidMap: fields.wamid ? this.wamidKey(fields.wamid) : record };
    const args: RecordArgs = {
      status,
      rank: RANK[status],
      atMs: fields.at ?? Date.now(),
      ttlS: Math.max(fields.ttlS ?? 0, this.ttlS),
      mustExist: fields.mustExist ? '1' : '0',
      replayFromRank: REPLAY_FROM_RANK,
      wamid: fields.wamid ?? '',
      errorJson: fields.error ? JSON.stringify(storedError(fields.error)) : '',
      sendAt: fields.sendAt ?? '',
      maxHistory: MAX_HISTORY,
      id,
    };
    return { keys, args };
  }

  /**
   * The record, or null when there is none (never recorded, or expired). A message dropped as a
   * duplicate shows the record of the one it repeats, with `duplicateOf`.
   */
  async get(id: string): Promise<StatusRecord | null> {
    const h = await this.rt.redis.hgetall(this.key(id));
    if (h.duplicateOf && h.duplicateOf !== id) {
      const first = await this.get(h.duplicateOf);
      return first && { ...first, id, duplicateOf: first.duplicateOf ?? h.duplicateOf };
    }
    if (!h.status || !isMessageStatus(h.status)) return null;
    const history = (h.history ?? '')
      .split(',')
      .filter(Boolean)
      .map((e) => {
        const at = e.lastIndexOf('@');
        return { status: e.slice(0, at) as MessageStatus, at: new Date(Number(e.slice(at + 1))).toISOString() };
      });
    const rec: StatusRecord = { id, status: h.status, history };
    if (h.wamid) rec.wamid = h.wamid;
    if (h.error) rec.error = JSON.parse(h.error) as StatusError;
    if (h.sendAt) rec.sendAt = h.sendAt;
    if (h.fallback) rec.fallback = h.fallback;
    return rec;
  }

  /** The current status only. */
  async current(id: string): Promise<MessageStatus | null> {
    const s = await this.rt.redis.hget(this.key(id), 'status');
    return isMessageStatus(s) ? s : null;
  }

  /** The envelope id a wamid was sent as, if the sender (or a webhook) recorded it. */
  async idForWamid(wamid: string): Promise<string | null> {
    return this.rt.redis.get(this.wamidKey(wamid));
  }

  /**
   * The envelope id a status webhook is about: its `biz_opaque_callback_data` if we hold a record
   * under that id, else whatever the wamid maps to.
   */
  async resolve(opaque: string | undefined, wamid: string): Promise<string | null> {
    if (opaque && (await this.rt.redis.exists(this.key(opaque)))) return opaque;
    return this.idForWamid(wamid);
  }

  /** Message `id` was dropped as a repeat of `firstId`: its record now points there. */
  async markDuplicate(id: string, firstId: string): Promise<void> {
    await this.rt.redis.multi().hset(this.key(id), 'duplicateOf', firstId).expire(this.key(id), this.ttlS).exec();
  }

  /** Drops a record whose message was never accepted after all (its publish failed). */
  async forget(id: string): Promise<void> {
    await this.rt.redis.del(this.key(id));
  }
}
