/**
 * What the dispatcher does with each message of the dispatch lanes: inbound → the bot handler,
 * whose replies go to the user's ordered send lane; status → the message's status record.
 * Outbound sends do not come here: the ingress and the scheduler publish them to the send lanes
 * (one broker hop). One that does (published before that change, or replayed from a dispatch-stage
 * dead letter) is forwarded to its send lane.
 */
import { createHash } from 'node:crypto';
import { newEnvelope, type Envelope } from '../../shared/domain/envelope.js';
import { businessNumbers } from '../../shared/platform/numbers.js';
import { publishToStage } from '../../shared/amqp/publish.js';
import type { Runtime } from '../../shared/amqp/runtime.js';
import type { DispatcherMetrics } from './metrics.js';
import { DeliveryGone, type StageContext } from '../../shared/stage/worker.js';
import type { StatusStore } from '../../shared/domain/status.js';
import { inboundAt, receivingNumber, type WindowBook } from '../../shared/domain/window.js';
import { TransientError } from '../../shared/failures/errors.js';
import type { BotHandler } from './bot-handler.js';
import { applyStatusEvent } from './status-events.js';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A reply's id derived from the inbound message's id and its index: a redelivered inbound message
 * produces the same reply ids, so the sender's dedup keeps the user from getting a reply twice.
 */
export function derivedId(parentId: string, index: number): string {
  const digest = createHash('sha256').update(`${parentId}/${index}`).digest();
  let rand = '';
  for (let i = 0; i < 16; i++) rand += CROCKFORD[digest[i] % 32];
  return parentId.slice(0, 10) + rand;
}

export interface DispatchDeps {
  rt: Runtime<DispatcherMetrics>;
  bot: BotHandler;
  status: StatusStore;
  windows: WindowBook;
}

export function createDispatchHandler({ rt, bot, status, windows }: DispatchDeps) {
  const numbers = businessNumbers(rt.cfg);
  /** Advisory: a Redis failure here never fails (and so never re-publishes) the message. */
  const dispatched = (env: Envelope, ctx: StageContext) =>
    status.record(env.id, 'dispatched').catch((err: Error) => ctx.log.warn({ err: err.message }, 'could not record status'));

  /**
   * The user wrote: their customer-service window is open (shared/domain/window.ts). Before the bot's
   * replies are published, so the sender's window check sees it. Under WHATSAPP_WINDOW_CHECK=enforce
   * a lost write would fail the replies, so a Redis failure retries the inbound message (the bot has
   * not been called yet); otherwise it is a warning.
   */
  async function windowOpened(env: Envelope, ctx: StageContext): Promise<void> {
    try {
      await windows.opened(receivingNumber(env, numbers.default.id), env.user, inboundAt(env));
    } catch (err) {
      if (rt.cfg.whatsappWindowCheck === 'enforce') {
        throw new TransientError(`could not record the customer-service window: ${(err as Error).message}`, { code: 'redis-unavailable', cause: err });
      }
      ctx.log.warn({ err: (err as Error).message }, 'could not record the customer-service window');
    }
  }

  return async function dispatch(env: Envelope, ctx: StageContext): Promise<void> {
    switch (env.kind) {
      case 'outbound': {
        // Ordered work pauses here while an urgent message is in flight in this replica.
        const hold = ctx.holdForUrgent();
        if (hold) {
          await hold;
          if (!ctx.live()) throw new DeliveryGone('the delivery went back to its queue while an urgent message went first');
        }
        await publishToStage(rt, 'send', env);
        return;
      }
      case 'inbound': {
        await windowOpened(env, ctx);
        const replies = await bot.handle(env, ctx);
        // A reply leaves from the number the user wrote to (when this fleet has it; else the default).
        const from = numbers.resolve(receivingNumber(env, numbers.default.id))?.id;
        // Published one at a time, in order: they share the user's shard, so order holds.
        for (let i = 0; i < replies.length; i++) {
          const reply = newEnvelope({
            id: derivedId(env.id, i),
            kind: 'outbound',
            user: env.user,
            priority: 'normal',
            payload: replies[i],
            ...(from !== undefined ? { from } : {}),
            replyTo: env.id,
            ...(env.correlationId ? { correlationId: env.correlationId } : {}),
          });
          await dispatched(reply, ctx);
          await publishToStage(rt, 'send', reply);
        }
        await dispatched(env, ctx);
        return;
      }
      case 'status':
        await applyStatusEvent(status, env, ctx.log);
        return;
    }
  };
}
