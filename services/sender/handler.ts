/**
 * What the sender does with each message of the send lanes: wait for its rate-limit tokens and a
 * provider slot, skip it if it was already sent (dedup by envelope id), call the provider,
 * remember the id.
 *
 * A provider throttle (130429, 131056, 429…) is not the message's fault: the limiter pauses the
 * number or the recipient for every replica, and the message tries again here after the pause
 * when that is short, or is re-tiered as *throttled* — no attempt counted, so throttling alone never
 * dead-letters a message (classify.ts classes these codes as transient for any caller; the sender re-classifies them).
 */
import type { Envelope } from '../../shared/domain/envelope.js';
import { H } from '../../shared/domain/envelope.js';
import { asClassified, ThrottledError, WindowClosedError, type ClassifiedError } from '../../shared/failures/errors.js';
import type { Runtime } from '../../shared/amqp/runtime.js';
import type { SenderMetrics } from './metrics.js';
import { DeliveryGone, type StageContext } from '../../shared/stage/worker.js';
import { isProviderThrottle, type SendLimiter } from './limiter.js';
import type { SenderNumbers } from './numbers.js';
import type { ProviderClient, SendResult } from './provider-client.js';
import { asFallback, heldByWindow, windowKey } from '../../shared/domain/window.js';
import { providerRefused, type BeginResult, type FallbackReason, type SendLedger } from './send-ledger.js';

/** Provider throttles one message rides out in-process before it is re-tiered. */
const INLINE_THROTTLE_TRIES = 3;

/** A provider 2xx, and whether it was for the fallback template (and why). */
interface Delivered {
  result: SendResult;
  fallback?: FallbackReason;
}

export interface SendDeps {
  rt: Runtime<SenderMetrics>;
  provider: ProviderClient;
  numbers: SenderNumbers;
  ledger: SendLedger;
}

export function createSendHandler({ rt, provider, numbers, ledger }: SendDeps) {
  /** The options every number's limiter shares (all but the throughput). */
  const limits = numbers.default.opts;
  /**
   * A call to the dedup store. Without its record a redelivery could reach the user twice, so a
   * Redis failure becomes a ThrottledError: wait, do not send, do not count an attempt.
   */
  async function dedupStore<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw new ThrottledError(`dedup store unavailable: ${(err as Error).message}`, {
        code: 'redis-unavailable',
        retryAfterMs: limits.throttleBackoffMs,
        cause: err,
      });
    }
  }

  /** Clears this replica's `sending` mark: the provider did not take the message (or no call was made). */
  const unmark = (id: string) => ledger.refused(id).catch(() => {});

  /**
   * The provider call, with its metrics; a definite refusal clears the mark — but not a 131047 the
   * caller answers at once with the fallback template (`fallbackNext`): that call needs the mark.
   */
  async function callProvider(env: Envelope, fallbackNext = false): Promise<SendResult> {
    const started = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    let result: SendResult;
    try {
      result = await provider.send(env);
    } catch (err) {
      const e = asClassified(err);
      rt.metrics.providerLatency.observe({ outcome: 'error' }, seconds());
      const { failureClass, code } = e;
      // A throttle keeps the mark while this delivery may still try again in-process (send() clears it).
      const keep = isProviderThrottle(e) || (fallbackNext && failureClass === 'window-closed');
      if (providerRefused(code) && !keep) await unmark(env.id);
      rt.metrics.sent.inc({ outcome: isProviderThrottle(e) ? 'throttled' : failureClass, code, number: env.from ?? numbers.numbers.default.id });
      throw e;
    }
    rt.metrics.providerLatency.observe({ outcome: 'ok' }, seconds());
    rt.metrics.sent.inc({ outcome: 'ok', code: String(result.status), number: env.from ?? numbers.numbers.default.id });
    return result;
  }

  /** After the provider's 2xx, outside the provider slot (the mark stays until this is written). */
  async function recordSent(env: Envelope, ctx: StageContext, { result, fallback }: Delivered): Promise<void> {
    if (fallback) ctx.log.info({ wamid: result.wamid, reason: fallback }, 'customer-service window closed; sent as the fallback template');
    else ctx.log.debug({ wamid: result.wamid }, 'provider accepted');
    // Ordered work also waits here while an urgent send is in flight: the calls already made when
    // the hold began would otherwise write their records on the urgent one's loop and connection.
    // The `sending` mark stands meanwhile (a crash in the wait leaves the message ambiguous).
    const hold = ctx.holdForUrgent();
    if (hold) await hold;
    // If this write is lost (crash or Redis down right here) the `sending` mark makes a redelivery
    // ambiguous, resolved by the provider's status webhook (send-ledger.ts).
    await ledger.done(env.id, result.wamid, fallback).catch((err: Error) => ctx.log.warn({ err: err.message }, 'could not record sent id'));
    const acceptedAt = Number(ctx.msg.properties.headers?.[H.acceptedAt] ?? Date.parse(env.createdAt));
    rt.metrics.endToEnd.observe({ lane: ctx.lane }, Math.max(0, Date.now() - acceptedAt) / 1000);
  }

  /**
   * The provider call for a message whose user's window is `windowOpen` (by Postmaster's record):
   * a free-form message outside it goes as its fallback template, or fails at once without a call
   * (WHATSAPP_WINDOW_CHECK=enforce); the Cloud API's 131047 gets the same answer.
   */
  async function deliver(env: Envelope, ctx: StageContext, windowOpen: boolean): Promise<Delivered> {
    const held = heldByWindow(env.payload);
    const fallback = held ? asFallback(env) : null;
    if (held && !windowOpen && rt.cfg.whatsappWindowCheck === 'enforce') {
      if (fallback) return sendFallback(fallback, 'window-closed');
      await unmark(env.id);
      throw new WindowClosedError('customer-service window closed: the user has not written in 24 hours, and the message has no fallbackTemplate (not sent)', {
        code: 'window-closed',
      });
    }
    // A template to a user outside the window opens a business-initiated conversation: it counts
    // against the portfolio's messaging limit.
    if (!windowOpen && env.payload.type === 'template') await admitBusinessInitiated(env);
    try {
      return { result: await callProvider(env, fallback !== null) };
    } catch (err) {
      if (!(fallback && err instanceof WindowClosedError)) throw err;
      ctx.log.info({ code: err.code }, 'provider refused a free-form message outside the window; sending the fallback template');
      return sendFallback(fallback, '131047');
    }
  }

  /** The fallback template: a business-initiated message, so within the messaging limit. */
  async function sendFallback(fallback: Envelope, reason: FallbackReason): Promise<Delivered> {
    await admitBusinessInitiated(fallback);
    rt.metrics.windowFallbacks.inc({ reason });
    return { result: await callProvider(fallback), fallback: reason };
  }

  /** The messaging-limit admission; refused, the message is not sent (the mark is cleared). */
  async function admitBusinessInitiated(env: Envelope): Promise<void> {
    try {
      await numbers.admitBusinessInitiated(env);
    } catch (err) {
      await unmark(env.id);
      throw err;
    }
  }

  /**
   * Order of the steps: a rate-limit token, then a slot of the provider pool, then — inside the
   * slot, right before the call — the dedup check that sets the `sending` mark. So a
   * mark stands only for a call that is about to be made or is being made, and a crash leaves at
   * most the pool's slots ambiguous (each waits SENDER_AMBIGUOUS_WAIT_MS on redelivery).
   * The price: a redelivery of a message already sent spends a token before it is dropped.
   */
  /** One delivery's progress across its in-process tries. */
  interface Sending {
    env: Envelope;
    ctx: StageContext;
    limiter: SendLimiter;
    /** This replica holds the `sending` mark. */
    marked: boolean;
    windowOpen: boolean;
    /** Provider throttles ridden out so far. */
    throttles: number;
  }

  /** One try: a token, a provider slot, the dedup check (once), the call. */
  async function attempt(s: Sending): Promise<BeginResult | Delivered> {
    const { env, ctx, limiter } = s;
    try {
      await limiter.acquire(env);
      // A token wait or an inline throttle retry can outlast a shard hand-over's grace period:
      // the broker has then given the message to the shard's next owner, which sends it.
      if (!ctx.live()) throw new DeliveryGone('the delivery went back to its queue while waiting for a send token');
    } catch (err) {
      if (s.marked) await unmark(env.id);
      throw err;
    }
    return provider.slot(env, async () => {
      // Ordered work waits here while an urgent send is in flight in this replica (the slot
      // holds no connection yet), so the urgent one's steps do not queue behind a pool's worth.
      const hold = ctx.holdForUrgent();
      if (hold) await hold;
      if (!ctx.live()) {
        if (s.marked) await unmark(env.id);
        throw new DeliveryGone('the delivery went back to its queue while waiting for a provider connection');
      }
      if (!s.marked) {
        // The dedup check; it also sets this replica's `sending` mark unless the id was sent.
        const begun = await dedupStore(() => ledger.begin(env.id, windowKey(rt, limiter.opts.phoneNumberId, env.user)));
        s.marked = begun.state !== 'sent';
        s.windowOpen = begun.windowOpen;
        if (begun.state !== 'fresh') return begun.state;
      }
      return deliver(env, ctx, s.windowOpen);
    });
  }

  /**
   * The provider throttled a try: pause the number or recipient fleet-wide, and either return (try
   * again in-process, keeping the mark) or throw the ThrottledError that re-tiers the message — when
   * the pause was not recorded, is longer than the longest token wait, or the tries are used up.
   */
  async function rideOutThrottle(s: Sending, err: ClassifiedError): Promise<void> {
    s.throttles++;
    const { error, paused } = await s.limiter.onProviderThrottle(s.env, err);
    s.ctx.log.info({ code: err.code, waitMs: error.retryAfterMs, tries: s.throttles }, 'provider throttled; number or recipient paused');
    if (!paused || s.throttles >= INLINE_THROTTLE_TRIES || (error.retryAfterMs ?? 0) > s.limiter.opts.maxTokenWaitMs) {
      await unmark(s.env.id);
      throw error;
    }
  }

  return async function send(env: Envelope, ctx: StageContext): Promise<void> {
    if (env.kind !== 'outbound') {
      ctx.log.warn({ kind: env.kind }, 'non-outbound message on a send lane; dropped');
      return;
    }
    const s: Sending = { env, ctx, limiter: numbers.limiterOf(env), marked: false, windowOpen: true, throttles: 0 };
    for (;;) {
      let outcome: BeginResult | Delivered;
      try {
        outcome = await attempt(s);
      } catch (err) {
        if (!isProviderThrottle(err)) throw err;
        await rideOutThrottle(s, err);
        continue; // the mark stays: this delivery tries again in-process
      }
      if (typeof outcome === 'object') return recordSent(env, ctx, outcome);
      if (outcome === 'ambiguous') {
        // Outside the slot: the wait (up to SENDER_AMBIGUOUS_WAIT_MS) must not hold a connection.
        ctx.log.warn('an earlier attempt may have reached the provider; waiting for its status webhook');
        if (!(await dedupStore(() => ledger.resolveAmbiguous(env.id)))) continue; // no proof it was sent: send it (the mark is ours now)
      }
      rt.metrics.duplicatesDropped.inc({ stage: 'send' });
      ctx.log.info('already sent; redelivery dropped');
      return;
    }
  };
}
