import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { TransientError, ThrottledError } from '../../shared/failures/errors.js';
import { SenderMetrics } from '../../services/sender/metrics.js';
import { keyspace } from '../../shared/platform/redis.js';
import { SendLimiter, type LimiterOptions } from '../../services/sender/limiter.js';
import { REDIS_URL } from '../support/isolation.js';

const BASE: LimiterOptions = {
  phoneNumberId: '100200300',
  throughputPerSecond: 0,
  pairIntervalMs: 0,
  pairBurst: 0,
  maxTokenWaitMs: 3000,
  throttleBackoffMs: 400,
  rateCooldownMs: 10_000,
};

describe('sender: limiter shared by replicas through Redis', function () {
  let redis: Redis;
  let prefix: string;
  const limiters: SendLimiter[] = [];

  async function replica(opts: Partial<LimiterOptions> = {}): Promise<{ limiter: SendLimiter; metrics: SenderMetrics }> {
    const metrics = new SenderMetrics('sender');
    const limiter = new SendLimiter({ redis, keys: keyspace(prefix, 'postmaster'), metrics }, { ...BASE, ...opts });
    await limiter.start();
    limiters.push(limiter);
    return { limiter, metrics };
  }

  beforeEach(() => {
    prefix = `pmtest-limiter-${randomBytes(3).toString('hex')}`;
    redis ??= new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
  });
  afterEach(async () => {
    for (const l of limiters.splice(0)) l.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
  });
  after(() => redis?.disconnect());

  it('pauses the whole number on every replica after one replica hears 130429, and halves its rate', async () => {
    const a = await replica({ throughputPerSecond: 40 });
    const b = await replica({ throughputPerSecond: 40 });
    const { error: err, paused } = await a.limiter.onProviderThrottle(
      { user: '15550001111' },
      new TransientError('provider answered 429 code 130429', { code: '130429' }),
    );
    expect(paused).to.equal(true);
    expect(err).to.be.instanceOf(ThrottledError);
    expect(err.code).to.equal('130429');
    expect(err.retryAfterMs).to.be.within(300, 400);

    const started = Date.now();
    await b.limiter.acquire({ user: '15550002222', priority: 'normal' });
    expect(Date.now() - started).to.be.at.least(300);
    expect((await b.limiter.backoff.numberState()).factor).to.equal(0.5);
    expect(await b.metrics.registry.getSingleMetricAsString('postmaster_send_rate_per_second')).to.match(/number="100200300"[^}]*\} 20$/m);
  });

  it('halves the rate once for a burst of 429s, not once per refused message', async () => {
    const a = await replica({ throughputPerSecond: 40 });
    const refusals = Array.from({ length: 8 }, () => a.limiter.onProviderThrottle({ user: '1555000' }, new TransientError('429', { code: 'http-429' })));
    await Promise.all(refusals);
    expect((await a.limiter.backoff.numberState()).factor).to.equal(0.5);
  });

  it('honours Retry-After, and a 131056 pauses only that recipient', async () => {
    const a = await replica();
    const b = await replica();
    const { error: err } = await a.limiter.onProviderThrottle({ user: '15550003333' }, new TransientError('pair', { code: '131056', retryAfterMs: 5000 }));
    expect(err.retryAfterMs).to.be.within(4900, 5000);
    // Longer than the in-process wait: turned away at once, as throttled, with the time left.
    const refused = await b.limiter.acquire({ user: '15550003333', priority: 'urgent' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(refused).to.be.instanceOf(ThrottledError);
    expect((refused as ThrottledError).retryAfterMs).to.be.within(4000, 5000);
    const started = Date.now();
    await b.limiter.acquire({ user: '15550004444', priority: 'normal' });
    expect(Date.now() - started).to.be.below(200);
  });

  it("gives the number's next token to an urgent send before normal ones that were waiting", async () => {
    const { limiter } = await replica({ throughputPerSecond: 10 });
    const order: string[] = [];
    const normal = Array.from({ length: 6 }, (_, i) => limiter.acquire({ user: `1555001${i}`, priority: 'normal' }).then(() => order.push(`n${i}`)));
    const urgent = limiter.acquire({ user: '15550019999', priority: 'urgent' }).then(() => order.push('u'));
    await Promise.all([...normal, urgent]);
    // The first normal one may already hold a token when the urgent one arrives; then the urgent one goes.
    expect(order.indexOf('u')).to.be.at.most(1);
    expect(order.filter((x) => x !== 'u')).to.deep.equal(['n0', 'n1', 'n2', 'n3', 'n4', 'n5']);
  });

  it('shares the pair window between replicas', async () => {
    const a = await replica({ pairIntervalMs: 1000, pairBurst: 2, maxTokenWaitMs: 100 });
    const b = await replica({ pairIntervalMs: 1000, pairBurst: 2, maxTokenWaitMs: 100 });
    const user = { user: '15550005555', priority: 'normal' as const };
    const outcomes = await Promise.allSettled([a.limiter.acquire(user), b.limiter.acquire(user), a.limiter.acquire(user), b.limiter.acquire(user)]);
    // Two tokens per 2 s window for this recipient, whichever replica asks (a window may turn over mid-test: at most 4).
    const granted = outcomes.filter((o) => o.status === 'fulfilled').length;
    expect(granted).to.be.within(2, 4);
    for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).to.be.instanceOf(ThrottledError);
  });
});
