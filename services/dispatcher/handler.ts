/**
 * What the dispatcher does with each message of the dispatch lanes:
 * outbound → the send lane of the user; inbound → the bot handler, whose replies go to the user's
 * ordered send lane; status → the message's status record.
 */
import { createHash } from 'node:crypto';
import { newEnvelope, type Envelope } from '../../shared/envelope.js';
import { publishToStage } from '../../shared/publish.js';
import type { Runtime } from '../../shared/runtime.js';
import type { StageContext } from '../../shared/stage/worker.js';
import type { BotHandler } from './bot-handler.js';

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
}

export function createDispatchHandler({ rt, bot }: DispatchDeps) {
  return async function dispatch(env: Envelope, ctx: StageContext): Promise<void> {
    switch (env.kind) {
      case 'outbound':
        await publishToStage(rt, 'send', env);
        return;
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
          await publishToStage(rt, 'send', reply);
        }
        return;
      }
      case 'status':
        // Status records are kept by the status store (issue 7); nothing to forward.
        return;
    }
  };
}
