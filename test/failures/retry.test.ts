import { routingKeyFor } from '../../shared/amqp/publish.js';
import { expect } from 'chai';
import amqplib from 'amqplib';
import { H } from '../../shared/domain/envelope.js';
import { useFleet } from '../support/use-fleet.js';
import { drainQueue } from '../../scripts/lib/dlq.js';
import { waitFor } from '../support/wait.js';

describe('failures: retry tiers, dead letters, order across retries', function () {
  this.timeout(120_000);

  const t = useFleet('retry', { overrides: { retryTiers: '1s,2s,4s', shards: 4 } });
  afterEach(() => t.fleet.sim.setFaults({ rules: [] }));

  const text = (to: string, body: string) => ({ to, type: 'text', text: { body } });
  const entriesOf = (id: string) => t.fleet.sim.ledger().filter((e) => e.id === id);

  it('delivers on the third attempt after two 503s, after the first two tier delays (±20 %), holding only that user', async () => {
    const slow = '15553000001';
    const other = '15553000002';
    t.fleet.sim.setFaults({ rules: [{ to: slow, times: 2, status: 503, code: 131000 }] });
    const first = await t.fleet.send(text(slow, 'first'));
    const later = [await t.fleet.send(text(slow, 'second')), await t.fleet.send(text(slow, 'third'))];
    // Another user is not delayed by the retrying one.
    const t0 = Date.now();
    const o = await t.fleet.send(text(other, 'unaffected'));
    await waitFor(() => t.fleet.sim.accepted().some((e) => e.id === o.body.id), { what: "the other user's message" });
    expect(Date.now() - t0, 'other user delay').to.be.below(800);

    await waitFor(() => t.fleet.sim.accepted().filter((e) => e.to === slow).length === 3, { timeoutMs: 20_000, what: "the retrying user's 3 messages" });
    const attempts = entriesOf(first.body.id);
    expect(attempts.map((e) => e.status)).to.deep.equal([503, 503, 200]);
    const d1 = attempts[1].receivedAt - attempts[0].receivedAt;
    const d2 = attempts[2].receivedAt - attempts[1].receivedAt;
    expect(d1, 'first tier delay').to.be.within(800, 1200);
    expect(d2, 'second tier delay').to.be.within(1600, 2400);
    // The user's later messages waited behind the retrying one, and kept their order.
    const order = t.fleet.sim
      .accepted()
      .filter((e) => e.to === slow)
      .map((e) => e.id);
    expect(order).to.deep.equal([first.body.id, ...later.map((l) => l.body.id)]);
  });

  it('dead-letters a permanent error (131026) after exactly one provider call, with code and message in the headers', async () => {
    const user = '15553000003';
    t.fleet.sim.setFaults({ rules: [{ to: user, times: 1, status: 400, code: 131026, message: 'Message undeliverable' }] });
    const r = await t.fleet.send(text(user, 'to nowhere'));
    const dlq = t.fleet.ingress.rt.topology.names.dlq;
    const [dead] = await waitFor(
      async () => {
        const got = await peek(t.iso.amqpUrl, dlq);
        return got.length ? got : null;
      },
      { timeoutMs: 10_000, what: 'the dead letter' },
    );
    expect(entriesOf(r.body.id)).to.have.length(1);
    expect(dead.id).to.equal(r.body.id);
    expect(dead.headers).to.include({
      [H.failureClass]: 'permanent',
      [H.failureCode]: '131026',
      [H.stage]: 'send',
      [H.lane]: 'send',
      [H.user]: user,
      [H.attempt]: 1,
      [H.originExchange]: t.fleet.ingress.rt.topology.names.laneExchange('send'),
      [H.originRoutingKey]: routingKeyFor(t.fleet.ingress.rt.topology, 'send', user),
    });
    expect(dead.headers[H.failureMessage]).to.match(/Message undeliverable/);
    expect(Date.parse(dead.headers[H.firstFailureAt])).to.be.a('number').and.not.NaN;
    await drainQueue(t.iso.amqpUrl, dlq);
  });

  it('dead-letters a message that always fails transiently after the last tier, counting every attempt', async () => {
    const user = '15553000004';
    t.fleet.sim.setFaults({ rules: [{ to: user, times: -1, status: 503, code: 131000 }] });
    const r = await t.fleet.send(text(user, 'never'));
    const dlq = t.fleet.ingress.rt.topology.names.dlq;
    const [dead] = await waitFor(
      async () => {
        const got = await drainQueue(t.iso.amqpUrl, dlq);
        return got.length ? got : null;
      },
      { timeoutMs: 20_000, what: 'the exhausted dead letter' },
    );
    expect(dead.id).to.equal(r.body.id);
    expect(entriesOf(r.body.id)).to.have.length(4); // first try + 3 tiers
    expect(dead.headers[H.attempt]).to.equal(4);
    expect(dead.headers[H.failureClass]).to.equal('transient');
  });

  it('dead-letters an invalid body at once, and the shard keeps flowing', async () => {
    const user = '15553000005';
    const conn = await amqplib.connect(t.iso.amqpUrl);
    const ch = await conn.createConfirmChannel();
    const sendEx = t.fleet.ingress.rt.topology.names.laneExchange('send');
    ch.publish(sendEx, routingKeyFor(t.fleet.ingress.rt.topology, 'send', user), Buffer.from('{"not":"an envelope"'), {
      persistent: true,
      messageId: 'garbage-1',
    });
    await ch.waitForConfirms();
    await conn.close();
    const after = await t.fleet.send(text(user, 'after the garbage'));
    await waitFor(() => t.fleet.sim.accepted().some((e) => e.id === after.body.id), { what: 'the message after the garbage' });
    const dlq = t.fleet.ingress.rt.topology.names.dlq;
    const dead = await waitFor(async () => (await drainQueue(t.iso.amqpUrl, dlq)).find((d) => d.id === 'garbage-1'), { what: 'the poison dead letter' });
    expect(dead.headers[H.failureClass]).to.equal('poison');
    expect(dead.headers[H.failureCode]).to.equal('invalid-envelope');
    expect(dead.body).to.equal('{"not":"an envelope"');
  });
});

/** Non-destructive look at a queue: take everything unacked, then close so it all goes back. */
async function peek(amqpUrl: string, queue: string) {
  const conn = await amqplib.connect(amqpUrl);
  try {
    const ch = await conn.createChannel();
    const out: Array<{ id?: string; headers: Record<string, any> }> = [];
    for (;;) {
      const m = await ch.get(queue, { noAck: false });
      if (!m) break;
      out.push({ id: m.properties.messageId, headers: m.properties.headers ?? {} });
    }
    return out;
  } finally {
    await conn.close();
  }
}
