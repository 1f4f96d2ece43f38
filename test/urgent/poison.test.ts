import { expect } from 'chai';
import amqplib from 'amqplib';
import { H, newEnvelope, type Envelope } from '../../shared/domain/envelope.js';
import { useFleet } from '../support/use-fleet.js';
import { crashUntilDeadLettered, startHangingBot, type HangingBot } from '../support/hanging-bot.js';
import { waitFor } from '../support/wait.js';

/**
 * The urgent lane's twin of test/failures/poison.test.ts. The urgent lane is a classic priority
 * queue, which keeps no delivery count: a message that kills its consumer would come back forever.
 * The bot handler never answers it and the test kills the dispatcher each time it is being handled;
 * the worker counts its redeliveries in Redis and, at DELIVERY_LIMIT, dead-letters the next one
 * unhandled as poison/delivery-limit. The lane then goes on delivering other urgent messages.
 */
describe('urgent lane: a message that crashes its consumer ends in the DLQ at the delivery limit', function () {
  this.timeout(180_000);
  let bot: HangingBot;
  const POISON = 'crash me urgently';

  const t = useFleet('urgent-poison', async () => {
    bot = await startHangingBot(POISON);
    t.defer('close the bot', () => bot.close());
    return { dispatchers: 0, senders: 1, overrides: { shards: 2, deliveryLimit: 2, botHandlerUrl: bot.url, botHandlerTimeoutMs: 60_000 } };
  });
  before(() => {
    expect(t.fleet.cfg.urgentQueueType, 'a classic urgent lane: no x-delivery-count').to.equal('classic');
  });

  const inbound = (user: string, body: string) =>
    newEnvelope({ kind: 'inbound', user, priority: 'urgent', urgency: 9, payload: { from: user, type: 'text', text: { body } } });

  async function publishUrgent(env: Envelope): Promise<void> {
    const conn = await amqplib.connect(t.iso.amqpUrl);
    const ch = await conn.createConfirmChannel();
    ch.publish(t.fleet.ingress.rt.topology.names.urgent('dispatch'), env.user, Buffer.from(JSON.stringify(env)), {
      persistent: true,
      messageId: env.id,
      priority: 9,
    });
    await ch.waitForConfirms();
    await conn.close();
  }

  it('dead-letters it after the delivery limit, as poison naming the count, and the lane keeps delivering', async () => {
    const poison = inbound('15558300001', POISON);
    await publishUrgent(poison);
    const { kills, dead, dispatcher } = await crashUntilDeadLettered({
      bot,
      messageId: poison.id,
      cfg: t.fleet.cfg,
      amqpUrl: t.iso.amqpUrl,
      dlq: t.fleet.ingress.rt.topology.names.dlq,
    });
    expect(kills, 'crashes before the DLQ').to.equal(2); // delivery limit 2: the third delivery is dead-lettered unhandled
    expect(dead.map((d) => d.id)).to.deep.equal([poison.id]);
    expect(dead[0].headers[H.lane]).to.equal('dispatch.urgent');
    expect(dead[0].headers[H.failureClass]).to.equal('poison');
    expect(dead[0].headers[H.failureCode]).to.equal('delivery-limit');
    expect(dead[0].headers[H.failureMessage]).to.match(/handed out 3 times/);
    const countKey = `${t.iso.redisKeyPrefix}:postmaster:redeliveries:dispatch:${poison.id}`;
    await waitFor(async () => (await t.iso.redis.exists(countKey)) === 0, { timeoutMs: 5000, what: 'the redelivery count cleared once settled' });

    // The lane keeps delivering: another urgent message is handled and answered.
    const next = inbound('15558300002', 'hello');
    await publishUrgent(next);
    await waitFor(() => t.fleet.sim.accepted().some((e) => e.to === next.user), { timeoutMs: 20_000, what: 'the reply to the next urgent message' });
    expect(
      bot.seen.filter((id) => id === poison.id),
      'the poison was not handled again',
    ).to.have.length(2);
    await dispatcher?.stop();
  });
});
