import { expect } from 'chai';
import amqplib, { type ChannelModel } from 'amqplib';
import fc from 'fast-check';
import { Broker, BrokerUnavailableError, outgoing, UnencodableMessageError, UnroutableError } from '../../shared/amqp/broker.js';
import { checkEncodable, dryRunEncode, surelyEncodable, type OutgoingMessage } from '../../shared/amqp/publisher-channel.js';
import { stagePublishArgs } from '../../shared/amqp/publish.js';
import { buildTopology } from '../../shared/amqp/topology/declaration.js';
import type { Stage } from '../../shared/amqp/topology/names.js';
import { newEnvelope } from '../../shared/domain/envelope.js';
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

describe('shared/publisher-channel: the fast encodability check', () => {
  const topology = buildTopology({ prefix: 'pm', shards: 16, retryTiersMs: [1000], urgentQueueType: 'classic', deliveryLimit: 3 });
  /** Whether amqplib's own encoders take the message. */
  const encodes = (m: OutgoingMessage): boolean => {
    try {
      dryRunEncode(m);
      return true;
    } catch {
      return false;
    }
  };
  /** Mostly what passes, often what does not: weights keep both sides of the check busy. */
  const often = <T>(usual: fc.Arbitrary<T>, odd: fc.Arbitrary<unknown>) => fc.oneof({ arbitrary: usual, weight: 6 }, { arbitrary: odd, weight: 1 });
  const text = fc.oneof(
    { arbitrary: fc.string({ maxLength: 20 }), weight: 6 },
    fc.string({ maxLength: 100 }),
    fc.string({ unit: 'binary', maxLength: 100 }),
    fc.string({ unit: 'grapheme', maxLength: 100 }),
    fc.constantFrom('€'.repeat(85), '€'.repeat(86), '😀'.repeat(42), '😀'.repeat(43), 'x'.repeat(85), 'x'.repeat(256), 'x'.repeat(5000)),
  );
  const value = fc.oneof(
    { arbitrary: text, weight: 6 },
    { arbitrary: fc.integer(), weight: 4 },
    fc.boolean(),
    fc.integer(),
    fc.double(),
    fc.bigInt(),
    fc.constantFrom(2 ** 53, 2 ** 64, -(2 ** 63) - 1, null, undefined),
    fc.array(fc.integer(), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
  );
  const message = fc.record(
    {
      exchange: text,
      routingKey: text,
      body: fc.constant(Buffer.from('{}')),
      options: fc.record(
        {
          messageId: text,
          correlationId: often(text, fc.integer()),
          contentType: text,
          type: text,
          priority: often(fc.integer({ min: 0, max: 255 }), fc.oneof(fc.integer({ min: -5, max: 300 }), fc.double())),
          timestamp: often(fc.integer({ min: 0, max: 2 ** 40 }), fc.oneof(fc.integer({ min: -10, max: 0 }), fc.double(), fc.constant(2 ** 64))),
          persistent: fc.boolean(),
          expiration: often(text, fc.integer()),
          headers: often(fc.dictionary(text, value, { maxKeys: 6 }), fc.oneof(fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }))),
          CC: fc.array(text, { maxLength: 2 }),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: ['exchange', 'routingKey', 'body', 'options'] },
  ) as fc.Arbitrary<OutgoingMessage>;

  it('only passes what amqplib would encode (generated messages, multi-byte and oversized fields, odd values)', () => {
    let passed = 0;
    fc.assert(
      fc.property(message, (m) => {
        if (!surelyEncodable(m)) return;
        passed++;
        expect(
          encodes(m),
          JSON.stringify(m, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)),
        ).to.equal(true);
      }),
      { numRuns: 3000 },
    );
    expect(passed, 'the generator reaches the fast path').to.be.above(50);
  });

  it('leaves the boundary cases to the dry run, which refuses the ones over 255 bytes', () => {
    const base: OutgoingMessage = { exchange: 'x', routingKey: 'k', body: Buffer.alloc(0), options: { messageId: 'm' } };
    const at = (extra: Partial<OutgoingMessage['options']>): OutgoingMessage => ({ ...base, options: { ...base.options, ...extra } });
    expect(surelyEncodable(at({ correlationId: '€'.repeat(85) })), '255 bytes').to.equal(true);
    expect(encodes(at({ correlationId: '€'.repeat(85) }))).to.equal(true);
    expect(surelyEncodable(at({ correlationId: 'x'.repeat(86) })), '86 units: not known').to.equal(false);
    expect(() => checkEncodable(at({ correlationId: 'x'.repeat(86) })), '86 ASCII bytes encode').not.to.throw();
    expect(() => checkEncodable(at({ correlationId: '€'.repeat(86) }))).to.throw(UnencodableMessageError);
    expect(() => checkEncodable(at({ headers: { ['😀'.repeat(64)]: 1 } }))).to.throw(UnencodableMessageError);
    expect(() => checkEncodable(at({ headers: { h: 'x'.repeat(70_000) } }))).to.throw(UnencodableMessageError);
    expect(() => checkEncodable(at({ priority: 256 }))).to.throw(UnencodableMessageError);
  });

  it('passes every message a stage publish makes of a valid envelope, so the hot path encodes each once', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[1-9]\d{6,19}$/),
        fc.option(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 64 }), { nil: undefined }),
        fc.constantFrom('normal', 'urgent'),
        fc.constantFrom('dispatch', 'send'),
        (user, correlationId, priority, stage) => {
          const env = newEnvelope({ kind: 'outbound', user, correlationId, priority, payload: { type: 'text', text: { body: 'hi' } } } as never);
          const { lane: _lane, urgent: _urgent, ...args } = stagePublishArgs(topology, stage as Stage, env);
          expect(surelyEncodable(outgoing({ ...args })), JSON.stringify({ user, correlationId })).to.equal(
            correlationId === undefined || correlationId.length <= 85,
          );
        },
      ),
      { numRuns: 500 },
    );
  });
});
