/**
 * What the sender does with each message of the send lanes: skip it if it was already sent
 * (dedup by envelope id), call the provider, remember the id, record latency.
 */
import type { Envelope } from '../../shared/envelope.js';
import { H } from '../../shared/envelope.js';
import type { ClassifiedError } from '../../shared/failures/errors.js';
import type { Runtime } from '../../shared/runtime.js';
import type { StageContext } from '../../shared/stage/worker.js';
import type { ProviderClient } from './provider-client.js';

export interface SendDeps {
  rt: Runtime;
  provider: ProviderClient;
}

export function createSendHandler({ rt, provider }: SendDeps) {
  const sentKey = (id: string) => rt.keys('sent', id);
  return async function send(env: Envelope, ctx: StageContext): Promise<void> {
    if (env.kind !== 'outbound') {
      ctx.log.warn({ kind: env.kind }, 'non-outbound message on a send lane; dropped');
      return;
    }
    if (await rt.redis.exists(sentKey(env.id))) {
      rt.metrics.duplicatesDropped.inc({ stage: 'send' });
      ctx.log.info('already sent; redelivery dropped');
      return;
    }
    const started = process.hrtime.bigint();
    try {
      const result = await provider.send(env);
      rt.metrics.providerLatency.observe({ outcome: 'ok' }, Number(process.hrtime.bigint() - started) / 1e9);
      rt.metrics.sent.inc({ outcome: 'ok', code: String(result.status) });
      // If this write is lost (crash or Redis down right here) a redelivery sends again: the one
      // remaining duplicate window, documented in ARCHITECTURE.md.
      await rt.redis.set(sentKey(env.id), result.wamid ?? '1', 'EX', rt.cfg.sentIdTtlS).catch((err: Error) =>
        ctx.log.warn({ err: err.message }, 'could not record sent id'),
      );
      const acceptedAt = Number(ctx.msg.properties.headers?.[H.acceptedAt] ?? Date.parse(env.createdAt));
      rt.metrics.endToEnd.observe({ lane: ctx.lane }, Math.max(0, Date.now() - acceptedAt) / 1000);
    } catch (err) {
      const e = err as ClassifiedError;
      rt.metrics.providerLatency.observe({ outcome: 'error' }, Number(process.hrtime.bigint() - started) / 1e9);
      rt.metrics.sent.inc({ outcome: e.failureClass ?? 'error', code: e.code ?? 'unknown' });
      throw err;
    }
  };
}
