/**
 * What the sender does with each message of the send lanes: skip it if it was already sent
 * (dedup by envelope id), wait for its rate-limit tokens, call the provider, remember the id.
 *
 * A provider throttle (130429, 131056, 429…) is not the message's fault: the limiter pauses the
 * number or the recipient for every replica, and the message tries again here after the pause
 * when that is short, or is re-tiered as *throttled* — no attempt counted, so throttling alone never
 * dead-letters a message (DESIGN §5 lists these codes as transient; the sender re-classifies them).
 */
import type { Envelope } from '../../shared/envelope.js';
import { H } from '../../shared/envelope.js';
import { asClassified, ThrottledError } from '../../shared/failures/errors.js';
import type { Runtime } from '../../shared/runtime.js';
import { DeliveryGone, type StageContext } from '../../shared/stage/worker.js';
import { isProviderThrottle, type SendLimiter } from './limiter.js';
import type { ProviderClient } from './provider-client.js';
import { providerRefused, type SendLedger } from './send-ledger.js';

/** Provider throttles one message rides out in-process before it is re-tiered. */
const INLINE_THROTTLE_TRIES = 3;

export interface SendDeps {
  rt: Runtime;
  provider: ProviderClient;
  limiter: SendLimiter;
  ledger: SendLedger;
}

export function createSendHandler({ rt, provider, limiter, ledger }: SendDeps) {
  /** True when the message must not be sent (again). */
  async function alreadySent(id: string, ctx: StageContext): Promise<boolean> {
    try {
      const state = await ledger.begin(id);
      if (state !== 'ambiguous') return state === 'sent';
      ctx.log.warn('an earlier attempt may have reached the provider; waiting for its status webhook');
      return await ledger.resolveAmbiguous(id);
    } catch (err) {
      // Without the dedup record a redelivery could reach the user twice: wait, do not send, do not count.
      throw new ThrottledError(`dedup store unavailable: ${(err as Error).message}`, { code: 'redis-unavailable', retryAfterMs: limiter.opts.throttleBackoffMs, cause: err });
    }
  }

  async function deliver(env: Envelope, ctx: StageContext): Promise<void> {
    const started = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    let result;
    try {
      result = await provider.send(env);
    } catch (err) {
      const e = asClassified(err);
      rt.metrics.providerLatency.observe({ outcome: 'error' }, seconds());
      const { failureClass, code } = e;
      // A throttle keeps the mark while this delivery may still try again in-process (send() clears it).
      if (providerRefused(code) && !isProviderThrottle(e)) await ledger.refused(env.id).catch(() => {});
      rt.metrics.sent.inc({ outcome: isProviderThrottle(e) ? 'throttled' : failureClass, code });
      throw e;
    }
    rt.metrics.providerLatency.observe({ outcome: 'ok' }, seconds());
    ctx.log.debug({ wamid: result.wamid }, 'provider accepted');
    rt.metrics.sent.inc({ outcome: 'ok', code: String(result.status) });
    // If this write is lost (crash or Redis down right here) the `sending` mark makes a redelivery
    // ambiguous, resolved by the provider's status webhook (send-ledger.ts).
    await ledger.done(env.id, result.wamid).catch((err: Error) => ctx.log.warn({ err: err.message }, 'could not record sent id'));
    const acceptedAt = Number(ctx.msg.properties.headers?.[H.acceptedAt] ?? Date.parse(env.createdAt));
    rt.metrics.endToEnd.observe({ lane: ctx.lane }, Math.max(0, Date.now() - acceptedAt) / 1000);
  }

  return async function send(env: Envelope, ctx: StageContext): Promise<void> {
    if (env.kind !== 'outbound') {
      ctx.log.warn({ kind: env.kind }, 'non-outbound message on a send lane; dropped');
      return;
    }
    if (await alreadySent(env.id, ctx)) {
      rt.metrics.duplicatesDropped.inc({ stage: 'send' });
      ctx.log.info('already sent; redelivery dropped');
      return;
    }
    for (let tries = 1; ; tries++) {
      try {
        await limiter.acquire(env);
        // A token wait or an inline throttle retry can outlast a shard hand-over's grace period:
        // the broker has then given the message to the shard's next owner, which sends it.
        if (!ctx.live()) throw new DeliveryGone('the delivery went back to its queue while waiting for a send token');
      } catch (err) {
        // No provider call was made: clear the `sending` mark, or the next delivery would look
        // ambiguous and wait for a webhook that cannot come.
        await ledger.refused(env.id).catch(() => {});
        throw err;
      }
      try {
        return await deliver(env, ctx);
      } catch (err) {
        if (!isProviderThrottle(err)) throw err;
        const { error, paused } = await limiter.onProviderThrottle(env, err);
        ctx.log.info({ code: err.code, waitMs: error.retryAfterMs, tries }, 'provider throttled; number or recipient paused');
        if (!paused || tries >= INLINE_THROTTLE_TRIES || (error.retryAfterMs ?? 0) > limiter.opts.maxTokenWaitMs) {
          await ledger.refused(env.id).catch(() => {});
          throw error;
        }
      }
    }
  };
}
