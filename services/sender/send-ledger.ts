/**
 * Per-message dedup of the sender, closing the "crashed after the provider's 2xx" window.
 *
 * Before calling the provider the sender marks the envelope id `sending`; after the 2xx it marks
 * it `sent` (and records the status with the wamid); after a definite refusal (an HTTP answer) it
 * clears `sending`. A delivery that finds `sent` is a redelivery of a message already sent: dropped.
 * A delivery that finds `sending` is *ambiguous*: an earlier attempt reached the provider or not,
 * and died (crash, SIGKILL, lost answer, Redis write lost) before saying. The Cloud API has no
 * idempotency key, but it reports every message it accepted through status webhooks that carry our
 * envelope id (`biz_opaque_callback_data`); so an ambiguous message waits up to
 * SENDER_AMBIGUOUS_WAIT_MS for a `sent`/`delivered`/`read`/`failed` status of that id, and is sent
 * again only if none comes (at-least-once: then the user may get it twice — when the webhooks are
 * not flowing, or arrive later than the wait).
 */
import { defineScript, waitForReplicas, type RedisScript } from '../../shared/redis.js';
import type { Runtime } from '../../shared/runtime.js';
import { RECORD_ARGS, RECORD_LUA, StatusStore } from '../../shared/status.js';
import { TickBatch } from '../../shared/tick-batch.js';
import { WINDOW_MS } from '../../shared/window.js';

// The begins and dones of one turn of the event loop go together (TickBatch): one script call each.

// KEYS: sent, sending, customer-service window per message; ARGV: ttl s, replica, window ms.
// Per message 'sent' | 'ambiguous' | 'fresh', then 1 if the window is open, else 0 (read on Redis's
// clock: one GET more in a script that runs anyway, no round trip of its own).
const BEGIN = `
local out = {}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS / 3 do
  local sent, sending, window = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  if redis.call('EXISTS', sent) == 1 then out[2 * i - 1] = 'sent'
  elseif redis.call('SET', sending, ARGV[2], 'EX', ARGV[1], 'NX') then out[2 * i - 1] = 'fresh'
  else
    redis.call('SET', sending, ARGV[2], 'EX', ARGV[1])
    out[2 * i - 1] = 'ambiguous'
  end
  local last = tonumber(redis.call('GET', window) or '')
  out[2 * i] = (last and last + tonumber(ARGV[3]) > now) and 1 or 0
end
return out`;

// KEYS: sending; ARGV: replica. Clears the mark only if this replica set it: after a hand-over the
// shard's next owner may have marked the message already.
const REFUSED = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

// KEYS: sent, sending, status record, wamid mapping (or the record again) per message; ARGV: ttl s,
// then per message the sent value, the fallback reason ('' when none) and the status record's
// RECORD_ARGS arguments (shared/status.ts). Each dedup record first: it stands even if its status fails.
const DONE = `${RECORD_LUA}
local per = 2 + ${RECORD_ARGS}
for i = 1, #KEYS / 4 do
  local k, a = (i - 1) * 4, 1 + (i - 1) * per
  redis.call('SET', KEYS[k + 1], ARGV[a + 1], 'EX', ARGV[1])
  redis.call('DEL', KEYS[k + 2])
  record(KEYS[k + 3], KEYS[k + 4], unpack(ARGV, a + 3, a + per))
  if ARGV[a + 2] ~= '' then redis.call('HSET', KEYS[k + 3], 'fallback', ARGV[a + 2]) end
end
return 1`;

/** Statuses that prove the provider accepted the message. */
const PROVIDER_SAW_IT = new Set(['sent', 'delivered', 'read', 'failed']);

export type BeginResult = 'sent' | 'ambiguous' | 'fresh';

/** The dedup state of a message and whether its user's customer-service window is open. */
export interface Begun {
  state: BeginResult;
  windowOpen: boolean;
}

/** Why a message went out as its fallback template: our window check, or the Cloud API's 131047. */
export type FallbackReason = 'window-closed' | '131047';

export class SendLedger {
  private readonly status: StatusStore;
  private readonly begins: TickBatch<{ id: string; window: string }, Begun>;
  private readonly dones: TickBatch<{ id: string; wamid: string | null; fallback?: FallbackReason }, void>;
  private readonly refusedScript: RedisScript;

  constructor(private readonly rt: Runtime) {
    this.status = new StatusStore(rt);
    const ttl = String(rt.cfg.sentIdTtlS);
    const begin = defineScript(rt.redis, 'postmasterSendBeginMany', BEGIN);
    const windowMs = String(WINDOW_MS);
    this.begins = new TickBatch(async (items) => {
      const keys = items.flatMap(({ id, window }) => [this.sent(id), this.sending(id), window]);
      const out = (await begin(keys.length, ...keys, ttl, rt.replicaId, windowMs)) as Array<BeginResult | number>;
      return items.map((_, i) => ({ state: out[2 * i] as BeginResult, windowOpen: out[2 * i + 1] === 1 }));
    });
    const done = defineScript(rt.redis, 'postmasterSendDoneMany', DONE);
    this.dones = new TickBatch(async (items) => {
      const keys: string[] = [];
      const args: string[] = [ttl];
      for (const { id, wamid, fallback } of items) {
        const call = this.status.recordCall(id, 'sent', wamid ? { wamid } : {});
        keys.push(this.sent(id), this.sending(id), call.keys[0], call.keys[1] ?? call.keys[0]);
        args.push(wamid ?? '1', fallback ?? '', ...call.args);
      }
      await done(keys.length, ...keys, ...args);
      await waitForReplicas(rt.redis, rt.cfg, 'sent record');
      return items.map(() => undefined);
    });
    this.refusedScript = defineScript(rt.redis, 'postmasterSendRefused', REFUSED);
  }

  private sent(id: string): string {
    return this.rt.keys('sent', id);
  }
  private sending(id: string): string {
    return this.rt.keys('sending', id);
  }

  /**
   * The dedup check (sets this replica's `sending` mark unless the id was sent), and the state of
   * the window at `windowKey` (shared/window.ts) read in the same script.
   */
  begin(id: string, windowKey: string): Promise<Begun> {
    return this.begins.add({ id, window: windowKey });
  }

  /**
   * After the provider's 2xx: the dedup record (`sent`, `sending` cleared) and the `sent` status
   * (with the wamid and its mapping, and `fallback` when the fallback template went instead), in one script with the others of this turn — one round trip;
   * then, with REDIS_WAIT_REPLICAS, one WAIT for them all (before the deliveries are acked): the record must outlive a
   * failover, or a later republish of the same id (a scheduled job whose completion the failover
   * lost) would be sent again. A ReplicaAckError: the record is on the primary only.
   */
  done(id: string, wamid: string | null, fallback?: FallbackReason): Promise<void> {
    return this.dones.add({ id, wamid, fallback });
  }

  /** The provider answered with a refusal: it did not take the message. */
  async refused(id: string): Promise<void> {
    await this.refusedScript(1, this.sending(id), this.rt.replicaId);
  }

  /**
   * An ambiguous message: did the provider take it? Waits for a status webhook proving it, up to
   * the configured time. True: it did (now recorded as sent). False: no proof — send again.
   */
  async resolveAmbiguous(id: string): Promise<boolean> {
    const deadline = Date.now() + this.rt.cfg.senderAmbiguousWaitMs;
    for (;;) {
      // The earlier attempt may still be running (a replica that lost the shard while draining):
      // its own `sent` record settles the question as well as a webhook does.
      if ((await this.rt.redis.exists(this.sent(id))) > 0) return true;
      const rec = await this.status.get(id);
      if (rec && (PROVIDER_SAW_IT.has(rec.status) || rec.history.some((h) => PROVIDER_SAW_IT.has(h.status)))) {
        await this.rt.redis.multi().set(this.sent(id), rec.wamid ?? '1', 'EX', this.rt.cfg.sentIdTtlS).del(this.sending(id)).exec();
        return true;
      }
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** Failures after which the provider certainly did not take the message (it answered, or was never reached). */
const NOT_REACHED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

export function providerRefused(code: string | undefined): boolean {
  if (!code) return false;
  return NOT_REACHED.has(code) || code.startsWith('http-') || /^\d+$/.test(code);
}
