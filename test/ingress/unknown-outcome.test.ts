import { expect } from 'chai';
import { request } from 'undici';
import { startIngress, type Ingress } from '../../services/ingress/service.js';
import { freezableRedis as freezableProxy, type FreezableRedis } from '../support/frozen-redis.js';
import { useFleet } from '../support/use-fleet.js';
import { waitFor } from '../support/wait.js';

/**
 * A 503 after a confirm timeout says the outcome is unknown, and a retry with the same idempotency
 * key is then safe: it goes out under the first attempt's message id, so the user gets one message
 * even though the broker stored both copies. The stall is real: the ingress's AMQP connection runs
 * through a TCP proxy that holds every byte for a while.
 */
describe('ingress: a confirm that times out is an unknown outcome, and the retry is safe', function () {
  this.timeout(60_000);
  let proxy: FreezableRedis;
  let ingress: Ingress;

  const t = useFleet('unknown-outcome');
  before(async () => {
    proxy = await freezableProxy(t.iso.amqpUrl.replace(/^amqp:/, 'redis:'));
    t.defer('close the proxy', () => proxy.close());
    const url = new URL(t.iso.amqpUrl);
    url.port = new URL(proxy.url).port;
    ingress = await startIngress({ ...t.fleet.cfg, amqpUrl: url.toString(), publishTimeoutMs: 1500 });
    t.defer('close the second ingress', async () => {
      proxy.thaw();
      await ingress.close();
    });
  });

  const send = async (body: Record<string, unknown>) => {
    const res = await request(`${ingress.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.fleet.cfg.ingressApiToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.statusCode, body: (await res.body.json()) as any };
  };

  it('answers 503 with outcome unknown, then 202 under the same id; the provider gets it once', async () => {
    const user = '15556660001';
    const body = { to: user, type: 'text', text: { body: 'exactly once' }, idempotencyKey: 'unknown-outcome-1' };
    // The publishing channel is open (it opens on the first publish).
    expect((await send({ to: '15556660009', type: 'text', text: { body: 'warm' } })).status).to.equal(202);
    proxy.freeze();
    const first = await send(body);
    expect(first.status, JSON.stringify(first.body)).to.equal(503);
    expect(first.body.outcome).to.equal('unknown');
    expect(first.body.message).to.match(/may have been stored/);
    proxy.thaw(); // the held publish reaches the broker now: the first copy is stored after all

    const retry = await waitFor(
      async () => {
        const r = await send(body);
        return r.status === 202 ? r : null;
      },
      { what: 'a 202 for the retry', intervalMs: 100 },
    );
    // Both copies reach the provider's door under one id; the sender sends an id once.
    await waitFor(() => t.fleet.sim.accepted().some((e) => e.to === user), { what: 'the message at the provider' });
    const again = await send(body);
    expect(again.status, 'a third try is a duplicate of the same id').to.equal(200);
    expect(again.body.id).to.equal(retry.body.id);
    await waitFor(async () => (await t.fleet.call('GET', `/v1/messages/${retry.body.id}`)).body?.status === 'sent', {
      what: 'the status record to say sent',
    }).catch(() => null);
    const atProvider = t.fleet.sim.accepted().filter((e) => e.to === user);
    expect(atProvider.map((e) => e.id)).to.deep.equal([retry.body.id]);
  });

  it('answers 503 without outcome when nothing was published, and frees the key', async () => {
    const body = { to: '15556660002', type: 'text', text: { body: 'once' }, idempotencyKey: 'unknown-outcome-2' };
    // The urgent lane's binding is gone: the broker returns the publish, so it certainly was not stored.
    const { default: amqplib } = await import('amqplib');
    const conn = await amqplib.connect(t.iso.amqpUrl);
    const ch = await conn.createChannel();
    const urgent = ingress.rt.topology.names.urgent('send');
    await ch.unbindQueue(urgent, urgent, '');
    const refused = await send({ ...body, priority: 'urgent' });
    await ch.bindQueue(urgent, urgent, '');
    await conn.close();
    expect(refused.status).to.equal(503);
    expect(refused.body).to.not.have.property('outcome');
    const retry = await send({ ...body, priority: 'urgent' });
    expect(retry.status, JSON.stringify(retry.body)).to.equal(202);
  });
});
