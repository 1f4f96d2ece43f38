import { expect } from 'chai';
import { Writable } from 'node:stream';
import { request } from 'undici';
import { ulid } from 'ulid';
import { sign } from '../../services/ingress/signature.js';
import { startDispatcher, type Dispatcher } from '../../services/dispatcher/service.js';
import { startIngress, type Ingress } from '../../services/ingress/service.js';
import { createLogger } from '../../shared/platform/logger.js';
import { createRuntime, type Runtime } from '../../shared/amqp/runtime.js';
import { StageMetrics } from '../../shared/stage/metrics.js';
import { RendezvousAssigner } from '../../shared/stage/membership.js';
import { freezableRedis, silentRedis, type FakeRedis, type FreezableRedis } from '../support/frozen-redis.js';
import { REDIS_URL } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';
import { fixture } from '../webhooks/meta.js';
import { useIsolation } from '../support/use-fleet.js';

/**
 * Every wait on Redis has a deadline (issue #25): a Redis that accepts connections but never
 * answers gets the ingress's 503 within PUBLISH_TIMEOUT_MS, and does not freeze lease renewal.
 */
describe('shared: Redis deadlines', function () {
  this.timeout(30_000);

  const t = useIsolation('redis-deadlines');

  describe('ingress against a Redis that never answers', () => {
    const PUBLISH_TIMEOUT_MS = 2000;
    /** Scheduling, timers and a loaded test machine; far below what a hang would take. */
    const MARGIN_MS = 500;
    let redis: FakeRedis;
    let ingress: Ingress;

    before(async () => {
      redis = await silentRedis();
      ingress = await startIngress(t.iso.config({ redisUrl: redis.url, publishTimeoutMs: PUBLISH_TIMEOUT_MS, redisCommandTimeoutMs: 800 }));
      expect(redis.connections(), 'the ingress connected to the silent Redis').to.be.at.least(1);
    });
    after(async () => {
      await ingress?.close();
      await redis?.close();
    });

    /** A request that gives up well after the deadline under test, so a hang fails the test instead of the suite. */
    async function call(method: 'GET' | 'POST', path: string, body?: string | Buffer, headers: Record<string, string> = {}) {
      const started = Date.now();
      const res = await request(`${ingress.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${ingress.rt.cfg.ingressApiToken}`, 'content-type': 'application/json', ...headers },
        body,
        signal: AbortSignal.timeout(PUBLISH_TIMEOUT_MS + 5000),
      });
      const text = await res.body.text();
      return { status: res.statusCode, headers: res.headers, body: text ? JSON.parse(text) : null, ms: Date.now() - started };
    }
    const send = (msg: Record<string, unknown>) => call('POST', '/v1/messages', JSON.stringify({ to: '15557770001', text: { body: 'hi' }, ...msg }));

    function expect503(res: Awaited<ReturnType<typeof call>>): void {
      expect(res.status, JSON.stringify(res.body)).to.equal(503);
      expect(res.headers['retry-after']).to.equal(String(ingress.rt.cfg.ingressRetryAfterS));
      expect(res.body.error).to.equal('unavailable');
      expect(res.ms, 'ms to the answer').to.be.below(PUBLISH_TIMEOUT_MS + MARGIN_MS);
    }

    it('answers a send with an idempotencyKey 503 within the publish timeout', async () => {
      expect503(await send({ idempotencyKey: `order-${ulid()}` }));
    });

    it('answers a scheduled send 503 within the publish timeout', async () => {
      expect503(await send({ sendAt: new Date(Date.now() + 3_600_000).toISOString() }));
    });

    it('accepts a plain send once the broker confirmed it: its status record is advisory', async () => {
      const res = await send({});
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
      expect(res.body.status).to.equal('accepted');
      expect(res.ms, 'ms to the answer').to.be.below(PUBLISH_TIMEOUT_MS + MARGIN_MS);
    });

    it('answers a webhook delivery 503 within the publish timeout (its events could not be claimed)', async () => {
      const raw = fixture('inbound-text.json');
      const res = await call('POST', '/webhooks/whatsapp', raw, { 'x-hub-signature-256': sign(raw, ingress.rt.cfg.whatsappAppSecret) });
      expect503(res);
    });

    it('answers a status lookup 503 within the publish timeout', async () => {
      expect503(await call('GET', `/v1/messages/${ulid()}`));
    });
  });

  describe('lease renewal while Redis is frozen', () => {
    const TTL_MS = 2000;
    const TICK_MS = 100;
    let proxy: FreezableRedis;
    let rt: Runtime<StageMetrics>;
    let assigner: RendezvousAssigner;
    const warnings: Array<{ msg: string; shard?: number; err?: string; at: number }> = [];

    before(async () => {
      proxy = await freezableRedis(REDIS_URL);
      const lines = new Writable({
        write(chunk, _enc, done) {
          for (const line of String(chunk).split('\n').filter(Boolean)) warnings.push({ ...JSON.parse(line), at: Date.now() });
          done();
        },
      });
      // No command timeout on the connection: the renewal's own deadline must be enough.
      const cfg = t.iso.config({ redisUrl: proxy.url, redisCommandTimeoutMs: 0, shards: 2, replicaId: 'frozen-replica', leaseTtlMs: TTL_MS });
      rt = await createRuntime(cfg, { service: 'dispatcher', metrics: StageMetrics, logger: createLogger({ level: 'warn', service: 'test' }, lines) });
    });
    after(async () => {
      proxy?.thaw();
      await assigner?.stop();
      await rt?.close();
      await proxy?.close();
    });

    const renewalFailures = (since: number) => warnings.filter((w) => w.msg.startsWith('lease renewal failed') && w.at >= since);

    it('fails a renewal within its deadline, keeps renewing and keeps the shards; renews again once Redis answers', async () => {
      assigner = new RendezvousAssigner(rt, 'dispatch', { ttlMs: TTL_MS, tickMs: TICK_MS });
      await assigner.start({ acquire: async () => {}, release: async () => {} });
      expect(assigner.owned()).to.deep.equal([0, 1]);

      const frozenAt = Date.now();
      proxy.freeze();
      // Two rounds of failures for a shard: the first hanging renewal did not stop the loop.
      const failed = await waitFor(
        () => {
          const f = renewalFailures(frozenAt).filter((w) => w.shard === 0);
          return f.length >= 2 ? f : null;
        },
        { what: 'two failed renewals of shard 0', timeoutMs: TTL_MS },
      );
      expect(failed[0].err).to.match(/no answer within \d+ ms/);
      expect(failed[0].at - frozenAt, 'ms from the freeze to the first failed renewal').to.be.below(TICK_MS + assigner.renewDeadlineMs + 300);
      expect(assigner.owned(), 'Redis cannot tell: the shards are kept').to.deep.equal([0, 1]);

      proxy.thaw();
      // Renewed after the thaw: still ours, its TTL back near the full TTL (it was down to about
      // TTL minus the freeze).
      const key = rt.keys('lease', 'dispatch', 0);
      await waitFor(async () => (await t.iso.redis.pttl(key)) > TTL_MS - 4 * TICK_MS, { what: 'the lease renewed after the thaw', timeoutMs: TTL_MS });
      expect(await t.iso.redis.get(key)).to.equal('frozen-replica');
      expect(
        warnings.filter((w) => /ran out/.test(w.msg)),
        'no lease ran out',
      ).to.deep.equal([]);
      expect(assigner.owned()).to.deep.equal([0, 1]);
    });
  });

  /**
   * BullMQ re-emits each error of the scheduled-send queue's connection; without a listener it
   * printed every one to stderr with its stack, a reconnect attempt at a time, for as long as Redis
   * was away. Now: nothing on stderr, one warn line per outage and one info line when it is over.
   */
  describe('ingress while Redis is frozen, then away', () => {
    let proxy: FreezableRedis;
    let ingress: Ingress;
    const lines: Array<{ level: number; msg: string; component?: string; errors?: number; err?: string }> = [];
    let connectionErrors = 0;

    before(async () => {
      proxy = await freezableRedis(REDIS_URL);
      const cfg = t.iso.config({ redisUrl: proxy.url, publishTimeoutMs: 2000, redisCommandTimeoutMs: 800 });
      ingress = await startIngress(cfg, {
        logger: createLogger({ level: 'info', service: 'ingress' }, { write: (l: string) => void lines.push(JSON.parse(l)) }),
      });
      // The queue finishes starting (a version check) on its own, after the ingress listens: a freeze
      // in the middle of it would time that out, an error of the freeze rather than of the outages.
      await ingress.schedule.queue.waitUntilReady();
      ingress.rt.redis.on('error', () => connectionErrors++);
    });
    after(async () => {
      proxy?.thaw();
      await ingress?.close();
      await proxy?.close();
    });

    const scheduled = () =>
      request(`${ingress.url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ingress.rt.cfg.ingressApiToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to: '15557770002', text: { body: 'later' }, sendAt: new Date(Date.now() + 3_600_000).toISOString() }),
      }).then(async (r) => (await r.body.text(), r.statusCode));

    it('writes nothing to stderr, and logs a warn line when an outage of Redis (and of the scheduled-send queue) begins and one when it is over', async () => {
      const stderr: string[] = [];
      const write = process.stderr.write;
      process.stderr.write = ((chunk: string | Uint8Array) => stderr.push(String(chunk)) > 0) as typeof process.stderr.write;
      try {
        proxy.freeze();
        expect(await scheduled(), 'a scheduled send while Redis is frozen').to.equal(503);
        proxy.thaw();
        for (const outage of [1, 2]) {
          const since = lines.length;
          const after = () => lines.slice(since);
          const errorsBefore = connectionErrors;
          await proxy.stop();
          // Reconnect attempts, each an error of the connection.
          await waitFor(() => connectionErrors - errorsBefore >= 4 || null, { what: `outage ${outage}: four failed reconnects` });
          expect(await scheduled(), `outage ${outage}: a scheduled send while Redis is away`).to.equal(503);
          await proxy.start();
          const back = await waitFor(() => after().find((l) => l.msg === 'scheduled-send queue: recovered'), { what: `outage ${outage}: the queue recovered` });
          expect(back.errors, 'errors counted in the outage').to.be.at.least(4);
          const queueLines = after().filter((l) => l.component === 'scheduled-sends');
          expect(
            queueLines.map((l) => [l.level, l.msg]),
            `outage ${outage}: the queue's lines ${JSON.stringify(lines.filter((l) => l.component === 'scheduled-sends'))}`,
          ).to.deep.equal([
            [40, 'scheduled-send queue: error; until it recovers, one such line a minute at most'],
            [30, 'scheduled-send queue: recovered'],
          ]);
          // The connection itself, the same way: not a line per reconnect attempt.
          await waitFor(() => after().find((l) => l.msg === 'redis: recovered'), { what: `outage ${outage}: the connection recovered` });
          expect(
            after()
              .filter((l) => l.msg.startsWith('redis'))
              .map((l) => [l.level, l.msg]),
          ).to.deep.equal([
            [40, 'redis: error; until it recovers, one such line a minute at most'],
            [30, 'redis: recovered'],
          ]);
        }
      } finally {
        process.stderr.write = write;
      }
      expect(stderr.join(''), 'written to stderr').to.equal('');
      expect(await scheduled(), 'a scheduled send once Redis is back').to.equal(202);
    });
  });

  /**
   * The dispatcher has three listeners on Redis errors: its runtime's connection, its scheduler's
   * own (BullMQ's blocking) connection, and the scheduler's Worker, which re-emits that
   * connection's errors. Each logs an outage once, not once per reconnect attempt.
   */
  describe('dispatcher while Redis is away', () => {
    let proxy: FreezableRedis;
    let dispatcher: Dispatcher;
    const lines: Array<{ level: number; msg: string }> = [];

    before(async () => {
      proxy = await freezableRedis(REDIS_URL);
      dispatcher = await startDispatcher(t.iso.config({ redisUrl: proxy.url, redisCommandTimeoutMs: 800 }), {
        logger: createLogger({ level: 'info', service: 'dispatcher' }, { write: (l: string) => void lines.push(JSON.parse(l)) }),
      });
    });
    after(async () => {
      await dispatcher?.close();
      await proxy?.close();
    });

    it('logs one warn line per connection when the outage begins, and one info line when it is over', async () => {
      let errors = 0;
      dispatcher.rt.redis.on('error', () => errors++);
      const since = lines.length;
      await proxy.stop();
      await waitFor(() => errors >= 4 || null, { what: 'four failed reconnects of the runtime connection', timeoutMs: 30_000 });
      await proxy.start();
      const recovered = ['redis: recovered', 'scheduler redis: recovered'];
      await waitFor(() => recovered.every((m) => lines.slice(since).some((l) => l.msg === m)) || null, {
        what: 'every connection recovered',
        timeoutMs: 30_000,
      });
      const mine = lines.slice(since).filter((l) => /^(redis|scheduler redis|scheduler): (error|recovered)/.test(l.msg));
      const count = (msg: string) => mine.filter((l) => l.msg === msg).length;
      for (const what of ['redis', 'scheduler redis']) {
        expect(count(`${what}: error; until it recovers, one such line a minute at most`), `${what}'s warn lines`).to.equal(1);
        expect(count(`${what}: recovered`), `${what}'s recovered lines`).to.equal(1);
      }
      // The Worker may or may not see an error of its own in a short outage; never more than one line.
      expect(count('scheduler: error; until it recovers, one such line a minute at most')).to.be.at.most(1);
    });
  });
});
