/**
 * What the dispatcher does with each message of the dispatch lanes:
 * outbound → the send lane of the user; inbound → the bot handler, whose replies go to the user's
 * ordered send lane; status → the message's status record.
 */
import { createHash } from 'node:crypto';
import { newEnvelope, type Envelope } from '../../shared/envelope.js';
import { publishToStage } from '../../shared/publish.js';
import type { Runtime } from '../../shared/runtime.js';
import { DeliveryGone, type StageContext } from '../../shared/stage/worker.js';
import type { StatusStore } from '../../shared/status.js';
import type { BotHandler } from './bot-handler.js';
import { DispatchDedup } from './dedup.js';
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
  rt: Runtime;
  bot: BotHandler;
  status: StatusStore;
}

export function createDispatchHandler({ rt, bot, status }: DispatchDeps) {
  const dedup = new DispatchDedup(rt);
  /** Advisory: a Redis failure here never fails (and so never re-publishes) the message. */
  const dispatched = (env: Envelope, ctx: StageContext) =>
    status.record(env.id, 'dispatched').catch((err: Error) => ctx.log.warn({ err: err.message }, 'could not record status'));

  return async function dispatch(env: Envelope, ctx: StageContext): Promise<void> {
    switch (env.kind) {
      case 'outbound': {
        const first = await dedup.firstOf(env, ctx.log);
        if (first !== env.id) {
          rt.metrics.duplicatesDropped.inc({ stage: 'dispatch' });
          ctx.log.info({ firstId: first }, 'repeat of an idempotency key already dispatched; dropped');
          await status.markDuplicate(env.id, first).catch((err: Error) => ctx.log.warn({ err: err.message }, 'could not record status'));
          return;
        }
        // Recorded while the publish is under way, not before it: one Redis round trip less on
        // every message's path. The sender's `sent` comes after a broker hop and a provider call,
        // and a record only moves forward (shared/status.ts), so even a late `dispatched` cannot
        // undo it. Awaited before the delivery is acked.
        const recorded = dispatched(env, ctx);
        // Ordered work pauses here while an urgent message is in flight in this replica.
        const hold = ctx.holdForUrgent();
        if (hold) {
          await hold;
          if (!ctx.live()) throw new DeliveryGone('the delivery went back to its queue while an urgent message went first');
        }
        await publishToStage(rt, 'send', env);
        await recorded;
        return;
      }
      case 'inbound': {
        const replies = await bot.handle(env, ctx);
        // Published one at a time, in order: they share the user's shard, so order holds.
        for (let i = 0; i < replies.length; i++) {
          const reply = newEnvelope({
            id: derivedId(env.id, i),
            kind: 'outbound',
            user: env.user,
            priority: 'normal',
            payload: replies[i],
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
