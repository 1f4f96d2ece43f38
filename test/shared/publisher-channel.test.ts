import { expect } from 'chai';
import amqplib, { type ChannelModel } from 'amqplib';
import { Broker, BrokerUnavailableError, UnencodableMessageError, UnroutableError } from '../../shared/amqp/broker.js';
import { brokerChecks } from '../../shared/amqp/runtime.js';
import { Health } from '../../shared/platform/health.js';
import { silentLogger } from '../../shared/platform/logger.js';
import { Metrics } from '../../shared/platform/metrics.js';
import { freezableRedis as freezableProxy, type FreezableRedis } from '../support/frozen-redis.js';
import { isolate, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';

const EXCHANGE = 'pc.in';
const QUEUE = 'pc.q';

/** Every message in the queue, in order, by message id (through raw amqplib, not the code under test). */
async function drain(conn: ChannelModel): Promise<string[]> {
  const ch = await conn.createChannel();
  const ids: string[] = [];
  for (;;) {
    const m = await ch.get(QUEUE, { noAck: true });
    if (!m) break;
    ids.push(String(m.properties.messageId));
  }
  await ch.close();
  return ids;
}

describe('shared/broker: every confirm answers its own message, whatever the input', function () {
  this.timeout(60_000);
  let iso: Isolation;
  let conn: ChannelModel;
  let broker: Broker;
  const returned: string[] = [];
  const publish = (id: string, extra: Partial<Parameters<Broker['publish']>[0]> = {}) =>
    broker.publish({ exchange: EXCHANGE, routingKey: 'k', body: Buffer.from(`{"id":"${id}"}`), messageId: id, ...extra });

  before(async () => {
    iso = await isolate('publisher');
    conn = await amqplib.connect(iso.amqpUrl);
    const ch = await conn.createChannel();
    await ch.assertExchange(EXCHANGE, 'direct', { durable: true });
    await ch.assertQueue(QUEUE, { durable: true });
    await ch.bindQueue(QUEUE, EXCHANGE, 'k');
    await ch.close();
    broker = new Broker({ urls: iso.amqpUrl, logger: silentLogger(), publishTimeoutMs: 3000, onReturned: (ex) => returned.push(ex) });
    await broker.waitForConnect(10_000);
  });
  after(async () => {
    await broker?.close();
    await conn?.close().catch(() => {});
    await iso?.cleanup();
  });
  beforeEach(async () => void (await drain(conn)));

  for (const [what, extra] of [
    ['a correlation id of 100 × "€" (300 bytes)', { correlationId: '€'.repeat(100) }],
    ['a message id of 256 ASCII bytes', { messageId: 'x'.repeat(256) }],
    ['a header name of 300 bytes', { headers: { ['h'.repeat(300)]: 1 } }],
    ['a routing key of 86 × "😀" (344 bytes)', { routingKey: '😀'.repeat(86) }],
  ] as const) {
    it(`refuses ${what} before counting a confirm, and the next 50 publishes are each confirmed and stored`, async () => {
      const err = await publish('bad', extra as never).then(
        () => null,
        (e: Error) => e,
      );
      expect(err).to.be.instanceOf(UnencodableMessageError);
      const ids = Array.from({ length: 50 }, (_, i) => `m${i}`);
      const started = Date.now();
      await Promise.all(ids.map((id) => publish(id)));
      expect(Date.now() - started, 'confirmed, not timed out').to.be.below(2500);
      expect(await drain(conn)).to.deep.equal(ids);
      expect(broker.publishFailingSince()).to.equal(null);
    });
  }

  it('refuses a publish that reaches no queue (mandatory + return), counts it, and stores nothing', async () => {
    const ch = await conn.createChannel();
    await ch.assertExchange('pc.nowhere', 'direct', { durable: false, autoDelete: false });
    await ch.close();
    const err = await broker.publish({ exchange: 'pc.nowhere', routingKey: 'k', body: Buffer.from('{}'), messageId: 'lost' }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).to.be.instanceOf(UnroutableError);
    expect((err as BrokerUnavailableError).outcomeUnknown, 'nothing was stored').to.equal(false);
    expect(returned).to.include('pc.nowhere');
    // Routed publishes around it are unaffected.
    await publish('after');
    expect(await drain(conn)).to.deep.equal(['after']);
  });

  it('replaces a channel the broker closed, failing only the publish that was on it', async () => {
    const err = await broker.publish({ exchange: 'pc.no-such-exchange', routingKey: 'k', body: Buffer.from('{}'), messageId: 'gone' }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).to.be.instanceOf(BrokerUnavailableError);
    expect((err as BrokerUnavailableError).reason).to.equal('closed');
    const started = Date.now();
    await Promise.all(['n1', 'n2', 'n3'].map((id) => publish(id)));
    expect(Date.now() - started, 'a new channel at once, not after a reconnect or a timeout').to.be.below(2000);
    expect(await drain(conn)).to.deep.equal(['n1', 'n2', 'n3']);
  });
});

describe('shared/health: readiness and liveness follow the publishing channel', function () {
  this.timeout(60_000);
  let iso: Isolation;
  let proxy: FreezableRedis;
  let broker: Broker;
  let health: Health;

  before(async () => {
    iso = await isolate('publish-health');
    const conn = await amqplib.connect(iso.amqpUrl);
    const ch = await conn.createChannel();
    await ch.assertExchange(EXCHANGE, 'direct', { durable: true });
    await ch.assertQueue(QUEUE, { durable: true });
    await ch.bindQueue(QUEUE, EXCHANGE, 'k');
    await conn.close();
    // A TCP proxy to the real broker that can hold every byte both ways (a stalled broker or network).
    proxy = await freezableProxy(iso.amqpUrl.replace(/^amqp:/, 'redis:'));
    const url = new URL(iso.amqpUrl);
    url.port = new URL(proxy.url).port;
    broker = new Broker({ urls: url.toString(), logger: silentLogger(), publishTimeoutMs: 1000, heartbeatS: 30 });
    await broker.waitForConnect(10_000);
    health = brokerChecks(new Health(new Metrics('health-test'), { stuckAfterMs: 1500, loopBlockedMs: 5000, tickMs: 100 }), broker).start();
  });
  after(async () => {
    health?.close();
    proxy?.thaw();
    await broker?.close();
    await proxy?.close();
    await iso?.cleanup();
  });

  it('is ready while confirms arrive; unready once they time out; not live once stuck; healed by its own probe', async () => {
    const publish = (id: string) => broker.publish({ exchange: EXCHANGE, routingKey: 'k', body: Buffer.from('{}'), messageId: id });
    await publish('ok');
    expect(health.readiness().ok).to.equal(true);
    expect(health.liveness().ok).to.equal(true);

    proxy.freeze();
    const err = await publish('stalled').then(
      () => null,
      (e: BrokerUnavailableError) => e,
    );
    expect(err?.reason).to.equal('timeout');
    expect(err?.outcomeUnknown, 'a timed-out confirm is an unknown outcome').to.equal(true);
    expect(health.readiness().ok).to.equal(false);
    expect(health.readiness().failing).to.have.property('publish');
    expect(health.liveness().ok, 'not stuck yet').to.equal(true);
    await waitFor(() => !health.liveness().ok, { what: 'liveness to fail after stuckAfterMs', timeoutMs: 5000 });

    // No traffic comes back to an unready pod: the health check's own probe must heal it.
    proxy.thaw();
    await waitFor(() => health.readiness().ok, { what: 'readiness to recover through the probe', timeoutMs: 5000 });
    expect(health.liveness().ok).to.equal(true);
  });
});
