/**
 * Message status records (DESIGN §1, §6): one Redis hash per envelope id, `status:<id>`, with a TTL,
 * that only ever moves forward — accepted → scheduled → dispatched → sent → delivered → read, or to
 * failed / dead-lettered — plus the wamid → envelope id mapping (`wamid:<wamid>`) by which status
 * webhooks find their message.
 *
 * Who records what:
 * - ingress: `accepted` (published at once) or `scheduled` (held until `sendAt`);
 * - dispatcher: `dispatched` (routed to the send lane / handed to the bot handler) and the statuses
 *   of WhatsApp's status webhooks (`sent`, `delivered`, `read`, `failed`, with the error);
 * - sender: `sent` with `{ wamid }` after the Cloud API's 2xx;
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
import type { Runtime } from './runtime.js';

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

export interface StatusError {
  code?: string;
  message: string;
  /** Failure class (transient, permanent, poison…) for pipeline failures. */
  class?: string;
  details?: string;
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
}

export type RecordResult = 'moved' | 'stale' | 'missing';

// KEYS[1] record. ARGV: status, rank, atMs, ttlS, mustExist, replayFromRank, wamid, errorJson, sendAt, maxHistory.
// Returns 1 moved, 0 stale, -1 missing.
const RECORD = `
if ARGV[5] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local rank = tonumber(ARGV[2])
local cur = tonumber(redis.call('HGET', KEYS[1], 'rank') or '-1')
local curStatus = redis.call('HGET', KEYS[1], 'status')
local moved = 0
if rank > cur or (curStatus == 'dead-lettered' and rank >= tonumber(ARGV[6]) and rank < cur) then
  redis.call('HSET', KEYS[1], 'status', ARGV[1], 'rank', ARGV[2])
  if redis.call('HINCRBY', KEYS[1], 'n', 1) <= tonumber(ARGV[10]) then
    local h = redis.call('HGET', KEYS[1], 'history')
    local entry = ARGV[1] .. '@' .. ARGV[3]
    redis.call('HSET', KEYS[1], 'history', h and (h .. ',' .. entry) or entry)
  end
  if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[8])
  elseif ARGV[1] ~= 'failed' and ARGV[1] ~= 'dead-lettered' then redis.call('HDEL', KEYS[1], 'error') end
  moved = 1
end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'wamid', ARGV[7]) end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'sendAt', ARGV[9]) end
local ttl = tonumber(ARGV[4])
if redis.call('TTL', KEYS[1]) < ttl then redis.call('EXPIRE', KEYS[1], ttl) end
return moved`;

export class StatusStore {
  private readonly ttlS: number;

  constructor(private readonly rt: Pick<Runtime, 'redis' | 'keys' | 'cfg'>) {
    this.ttlS = rt.cfg.statusTtlS;
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
    const ttl = Math.max(fields.ttlS ?? 0, this.ttlS);
    const args = [
      status,
      String(RANK[status]),
      String(fields.at ?? Date.now()),
      String(ttl),
      fields.mustExist ? '1' : '0',
      String(REPLAY_FROM_RANK),
      fields.wamid ?? '',
      fields.error ? JSON.stringify(fields.error) : '',
      fields.sendAt ?? '',
      String(MAX_HISTORY),
    ];
    const pipe = this.rt.redis.pipeline().eval(RECORD, 1, this.key(id), ...args);
    if (fields.wamid) pipe.set(this.wamidKey(fields.wamid), id, 'EX', ttl);
    const [[err, res]] = (await pipe.exec()) ?? [[new Error('pipeline discarded'), null]];
    if (err) throw err;
    const n = Number(res);
    return n === 1 ? 'moved' : n === 0 ? 'stale' : 'missing';
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
