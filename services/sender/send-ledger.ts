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
import { luaScript, type LuaFn } from '../../shared/platform/lua-scripts.js';
import { waitForReplicas } from '../../shared/platform/redis.js';
import type { Runtime } from '../../shared/amqp/runtime.js';
import type { SenderMetrics } from './metrics.js';
import { RECORD_ARG_NAMES, RECORD_ARGS, StatusStore } from '../../shared/domain/status.js';
import { TickBatch } from '../../shared/platform/tick-batch.js';
import { WINDOW_MS } from '../../shared/domain/window.js';

// The begins and dones of one turn of the event loop go together (TickBatch): one script call each.
const BEGIN_MANY = luaScript({
  name: 'postmasterSendBeginMany',
  file: new URL('./lua/send-begin-many.lua', import.meta.url),
  args: ['ttlS', 'replica', 'windowMs'],
  each: { keys: ['sent', 'sending', 'window'] },
});
const DONE_MANY = luaScript({
  name: 'postmasterSendDoneMany',
  file: new URL('./lua/send-done-many.lua', import.meta.url),
  args: ['ttlS'],
  each: { keys: ['sent', 'sending', 'record', 'wamidMap'], args: ['sentValue', 'fallback', ...RECORD_ARG_NAMES] },
  constants: { RECORD_ARGS },
});
const REFUSED = luaScript({
  name: 'postmasterSendRefused',
  file: new URL('./lua/send-refused.lua', import.meta.url),
  keys: ['sending'],
  args: ['replica'],
});

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
  private readonly refusedScript: LuaFn<typeof REFUSED>;

  constructor(private readonly rt: Runtime<SenderMetrics>) {
    this.status = new StatusStore(rt);
    const ttlS = rt.cfg.sentIdTtlS;
    const begin = BEGIN_MANY.bind(rt.redis);
    this.begins = new TickBatch(async (items) => {
      const each = items.map(({ id, window }) => ({ keys: { sent: this.sent(id), sending: this.sending(id), window } }));
      const out = (await begin({ args: { ttlS, replica: rt.replicaId, windowMs: WINDOW_MS }, each })) as Array<BeginResult | number>;
      return items.map((_, i) => ({ state: out[2 * i] as BeginResult, windowOpen: out[2 * i + 1] === 1 }));
    });
    const done = DONE_MANY.bind(rt.redis);
    this.dones = new TickBatch(async (items) => {
      const each = items.map(({ id, wamid, fallback }) => {
        const call = this.status.recordCall(id, 'sent', wamid ? { wamid } : {});
        return {
          keys: { sent: this.sent(id), sending: this.sending(id), ...call.keys },
          args: { sentValue: wamid ?? '1', fallback: fallback ?? '', ...call.args },
        };
      });
      await done({ args: { ttlS }, each });
      await waitForReplicas(rt.redis, rt.cfg, 'sent record');
      return items.map(() => undefined);
    });
    this.refusedScript = REFUSED.bind(rt.redis);
  }

  private sent(id: string): string {
    return this.rt.keys('sent', id);
  }
  private sending(id: string): string {
    return this.rt.keys('sending', id);
  }

  /**
   * The dedup check (sets this replica's `sending` mark unless the id was sent), and the state of
   * the window at `windowKey` (shared/domain/window.ts) read in the same script.
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
    await this.refusedScript({ keys: { sending: this.sending(id) }, args: { replica: this.rt.replicaId } });
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
        await this.rt.redis
          .multi()
          .set(this.sent(id), rec.wamid ?? '1', 'EX', this.rt.cfg.sentIdTtlS)
          .del(this.sending(id))
          .exec();
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
