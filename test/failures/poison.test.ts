import { routingKeyFor } from '../../shared/amqp/publish.js';
import { expect } from 'chai';
import amqplib from 'amqplib';
import { H, newEnvelope } from '../../shared/domain/envelope.js';
import { useFleet } from '../support/use-fleet.js';
import { crashUntilDeadLettered, startHangingBot, type HangingBot } from '../support/hanging-bot.js';
import { waitFor } from '../support/wait.js';

/**
 * A message whose handling kills the consumer: the bot handler never answers it, and the test kills
 * the dispatcher process each time it is being handled, as a crash would. After DELIVERY_LIMIT such
 * deliveries the next one is dead-lettered by the worker (poison/delivery-limit) without being
 * handled, which also releases the user's strict-order hold; the shard then keeps flowing.
 */
describe('failures: a message that crashes its consumer ends in the DLQ at the delivery limit', function () {
  this.timeout(180_000);
  let bot: HangingBot;
  let botUrl: string;
  const POISON = 'crash me';

  const t = useFleet('poison', async () => {
    bot = await startHangingBot(POISON);
    t.defer('close the bot', () => bot.close());
    botUrl = bot.url;
    return { dispatchers: 0, senders: 1, overrides: { shards: 2, deliveryLimit: 2, botHandlerUrl: botUrl, botHandlerTimeoutMs: 60_000 } };
  });

  it('dead-letters it after the delivery limit, as poison, and the shard keeps flowing', async () => {
    const user = '15556000001';
    const inbound = newEnvelope({ kind: 'inbound', user, priority: 'normal', payload: { from: user, type: 'text', text: { body: POISON } } });
    const conn = await amqplib.connect(t.iso.amqpUrl);
    const ch = await conn.createConfirmChannel();
    const dispatch = t.fleet.ingress.rt.topology.names.laneExchange('dispatch');
    ch.publish(dispatch, routingKeyFor(t.fleet.ingress.rt.topology, 'dispatch', user), Buffer.from(JSON.stringify(inbound)), {
      persistent: true,
      messageId: inbound.id,
    });
    await ch.waitForConfirms();
    await conn.close();

    const { kills, dead, dispatcher } = await crashUntilDeadLettered({
      bot,
      messageId: inbound.id,
      cfg: t.fleet.cfg,
      amqpUrl: t.iso.amqpUrl,
      dlq: t.fleet.ingress.rt.topology.names.dlq,
    });
    expect(kills, 'crashes before the DLQ').to.equal(2); // delivery limit 2: the third delivery is dead-lettered unhandled
    expect(dead.map((d) => d.id)).to.deep.equal([inbound.id]);
    expect(dead[0].headers[H.failureClass]).to.equal('poison');
    expect(dead[0].headers[H.failureCode]).to.equal('delivery-limit');
    expect(dead[0].headers['x-death'], 'dead-lettered by the worker, not by the broker').to.equal(undefined);

    // The shard keeps flowing: the same user's next message is handled and answered.
    const next = newEnvelope({ kind: 'inbound', user, priority: 'normal', payload: { from: user, type: 'text', text: { body: 'hello again' } } });
    const c2 = await amqplib.connect(t.iso.amqpUrl);
    const ch2 = await c2.createConfirmChannel();
    ch2.publish(dispatch, routingKeyFor(t.fleet.ingress.rt.topology, 'dispatch', user), Buffer.from(JSON.stringify(next)), {
      persistent: true,
      messageId: next.id,
    });
    await ch2.waitForConfirms();
    await c2.close();
    await waitFor(() => t.fleet.sim.accepted().some((e) => e.to === user), { timeoutMs: 20_000, what: 'the reply to the next message' });
    await dispatcher?.stop();
  });
});
