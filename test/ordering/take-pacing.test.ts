import { expect } from 'chai';
import { createRuntime, type Runtime } from '../../shared/amqp/runtime.js';
import { StageMetrics } from '../../shared/stage/metrics.js';
import { RendezvousAssigner } from '../../shared/stage/membership.js';
import { silentLogger } from '../../shared/platform/logger.js';
import { useIsolation } from '../support/use-fleet.js';

/**
 * A replica that starts (or takes over a gone replica's shards) onto full shards subscribes them
 * SHARD_TAKE_SPACING_MS apart, not all at once — and holds each lease while the take-over waits its
 * turn, so no other replica can take the shard meanwhile. Real Redis; the subscriptions are
 * callbacks that note when they ran.
 */
describe('ordering: paced shard take-overs (SHARD_TAKE_SPACING_MS)', function () {
  this.timeout(60_000);
  const SHARDS = 4;
  const runtimes: Runtime<StageMetrics>[] = [];
  const assigners: RendezvousAssigner[] = [];

  const t = useIsolation('take-pacing');
  before(() =>
    t.defer('close the runtimes', async () => {
      for (const rt of runtimes) await rt.close();
    }),
  );
  // Each test's assigner gives its leases back, also when the test failed half-way.
  afterEach(async () => {
    for (const a of assigners.splice(0)) await a.stop();
  });

  async function runtime(replicaId: string, shards = SHARDS): Promise<Runtime<StageMetrics>> {
    const rt = await createRuntime(t.iso.config({ shards, replicaId, leaseTtlMs: 3000 }), {
      service: 'dispatcher',
      metrics: StageMetrics,
      logger: silentLogger(),
    });
    runtimes.push(rt);
    return rt;
  }

  /** Who holds each shard's lease (null: nobody). */
  function leasesOf(rt: Runtime<StageMetrics>): Promise<Array<string | null>> {
    return Promise.all(Array.from({ length: SHARDS }, (_, s) => rt.redis.get(rt.keys('lease', 'dispatch', s))));
  }

  /** Starts an assigner whose subscriptions record when they ran. */
  async function assigner(rt: Runtime<StageMetrics>, takeSpacingMs: number, ttlMs = 3000) {
    const taken: Array<{ shard: number; at: number }> = [];
    const a = new RendezvousAssigner(rt, 'dispatch', { ttlMs, tickMs: 100, takeSpacingMs });
    assigners.push(a);
    const started = Date.now();
    const ready = a.start({
      acquire: async (shard) => void taken.push({ shard, at: Date.now() - started }),
      release: async () => {},
    });
    return { a, taken, ready };
  }

  it('subscribes its shards at least the spacing apart, holding every lease meanwhile', async () => {
    const rt = await runtime('paced');
    const { a, taken, ready } = await assigner(rt, 300);
    // While the take-overs wait their turn, every lease is already this replica's.
    await new Promise((r) => setTimeout(r, 100));
    const leases = await leasesOf(rt);
    expect(leases, 'leases held while waiting to subscribe').to.deep.equal(Array(SHARDS).fill('paced'));
    expect(taken.length, 'subscribed so far').to.be.below(SHARDS);

    await ready;
    expect(taken.map((t) => t.shard).sort()).to.deep.equal([0, 1, 2, 3]);
    // The k-th subscription's turn comes k spacings after the first's (a late timer may shorten
    // the gap after it, never the schedule).
    const since = taken.map((t) => t.at - taken[0].at);
    since.forEach((ms, k) => expect(ms, `subscriptions at +${since.join(', +')} ms`).to.be.at.least(k * 300 - 20));
    expect(a.owned()).to.deep.equal([0, 1, 2, 3]);
    await a.stop();
  });

  it('keeps its leases and its membership while a start-up takes longer than the lease TTL', async () => {
    const rt = await runtime('slow-start');
    // 4 shards 500 ms apart: the last is subscribed 1.5 s after the first lease was set, with a
    // TTL of 1 s — renewals and heartbeats must run during the start.
    const { a, ready } = await assigner(rt, 500, 1000);
    await ready;
    await new Promise((r) => setTimeout(r, 300));
    const leases = await leasesOf(rt);
    expect(leases, 'leases after the start').to.deep.equal(Array(SHARDS).fill('slow-start'));
    expect(a.owned()).to.deep.equal([0, 1, 2, 3]);
    const expiry = Number(await rt.redis.zscore(rt.keys('members', 'dispatch'), 'slow-start'));
    expect(expiry, 'membership heartbeat still current').to.be.above(Date.now());
  });

  it('with a spacing of 0 subscribes them all at once', async () => {
    const rt = await runtime('unpaced');
    const { a, taken, ready } = await assigner(rt, 0);
    await ready;
    expect(taken).to.have.length(SHARDS);
    expect(taken[SHARDS - 1].at - taken[0].at, 'spread of the subscriptions (ms)').to.be.below(200);
    await a.stop();
  });

  it('does not subscribe a shard whose lease ran out while its take-over waited', async () => {
    const rt = await runtime('overtaken');
    const { taken } = await assigner(rt, 1500);
    await new Promise((r) => setTimeout(r, 200));
    expect(
      taken.map((t) => t.shard),
      'only the first take-over went at once',
    ).to.have.length(1);
    // Another replica's lease on a shard still waiting its turn (as after a stall past the TTL).
    const waiting = [0, 1, 2, 3].find((s) => !taken.some((t) => t.shard === s))!;
    const key = rt.keys('lease', 'dispatch', waiting);
    await rt.redis.set(key, 'intruder', 'PX', 20_000);
    try {
      await new Promise((r) => setTimeout(r, 5500)); // every other take-over's turn (the last at +4.5 s) has come by now
      expect(taken.map((t) => t.shard).sort(), 'subscribed').to.deep.equal([0, 1, 2, 3].filter((s) => s !== waiting));
      expect(await rt.redis.get(key), "the other replica's lease").to.equal('intruder');
    } finally {
      await rt.redis.del(key);
    }
  });

  it('a replica stopping while take-overs wait gives their leases back without subscribing', async () => {
    const rt = await runtime('leaving');
    const { a, taken, ready } = await assigner(rt, 2000);
    await new Promise((r) => setTimeout(r, 200));
    expect(taken, 'only the first take-over went at once').to.have.length(1);
    const t0 = Date.now();
    await a.stop();
    await ready;
    expect(Date.now() - t0, 'the stop did not wait out the spacing (ms)').to.be.below(1500);
    expect(taken, 'no subscription after the stop').to.have.length(1);
    const leases = await leasesOf(rt);
    expect(leases, 'no lease left behind').to.deep.equal(Array(SHARDS).fill(null));
  });

  it('waits for 16 shards at once without a listener-leak warning', async () => {
    // Every waiting take-over listens on the stop signal until its turn: 15 at once here, over
    // Node's default threshold of 10, which printed a MaxListenersExceededWarning at each start.
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const rt = await runtime('sixteen', 16);
      const { a, taken, ready } = await assigner(rt, 20);
      await ready;
      expect(taken, 'every shard subscribed').to.have.length(16);
      await a.stop();
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).to.deep.equal([]);
  });
});
