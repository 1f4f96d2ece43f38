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
import { defineScript, type RedisScript } from '../../shared/redis.js';
import type { Runtime } from '../../shared/runtime.js';
import { RECORD_LUA, StatusStore } from '../../shared/status.js';

// KEYS: sent, sending; ARGV: ttl s, replica. 'sent' | 'ambiguous' | 'fresh'.
const BEGIN = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'sent' end
if redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[1], 'NX') then return 'fresh' end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[1])
return 'ambiguous'`;

// KEYS: sending; ARGV: replica. Clears the mark only if this replica set it: after a hand-over the
// shard's next owner may have marked the message already.
const REFUSED = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

// KEYS: sent, sending, status record[, wamid mapping]; ARGV: sent value, ttl s, then the status
// record's arguments (shared/status.ts). The dedup record first: it stands even if the status fails.
const DONE = `${RECORD_LUA}
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('DEL', KEYS[2])
return record(KEYS[3], KEYS[4], unpack(ARGV, 3))`;

/** Statuses that prove the provider accepted the message. */
const PROVIDER_SAW_IT = new Set(['sent', 'delivered', 'read', 'failed']);

export type BeginResult = 'sent' | 'ambiguous' | 'fresh';

export class SendLedger {
  private readonly status: StatusStore;
  private readonly beginScript: RedisScript;
  private readonly doneScript: RedisScript;
  private readonly refusedScript: RedisScript;

  constructor(private readonly rt: Runtime) {
    this.status = new StatusStore(rt);
    this.beginScript = defineScript(rt.redis, 'postmasterSendBegin', BEGIN);
    this.doneScript = defineScript(rt.redis, 'postmasterSendDone', DONE);
    this.refusedScript = defineScript(rt.redis, 'postmasterSendRefused', REFUSED);
  }

  private sent(id: string): string {
    return this.rt.keys('sent', id);
  }
  private sending(id: string): string {
    return this.rt.keys('sending', id);
  }

  begin(id: string): Promise<BeginResult> {
    return this.beginScript(2, this.sent(id), this.sending(id), String(this.rt.cfg.sentIdTtlS), this.rt.replicaId) as Promise<BeginResult>;
  }

  /**
   * After the provider's 2xx: the dedup record (`sent`, `sending` cleared) and the `sent` status
   * (with the wamid and its mapping), in one script — one round trip.
   */
  async done(id: string, wamid: string | null): Promise<void> {
    const { keys, args } = this.status.recordCall(id, 'sent', wamid ? { wamid } : {});
    await this.doneScript(2 + keys.length, this.sent(id), this.sending(id), ...keys, wamid ?? '1', String(this.rt.cfg.sentIdTtlS), ...args);
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
