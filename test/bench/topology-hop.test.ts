import { expect } from 'chai';
import { topologyHop } from '../../scripts/bench/topology-hop.js';
import { isolate, type Isolation } from '../support/isolation.js';
import { MGMT_URL } from '../support/isolation.js';

/**
 * The bench's topology hop against the real broker: saturated (a confirm window) and paced (batches
 * on schedule, the pipeline's load shape), every message through the shard exchange and
 * consumed from the shards.
 */
describe('bench: the topology hop, saturated and paced', () => {
  let iso: Isolation;
  beforeEach(async () => {
    iso = await isolate('topohop');
  });
  afterEach(async () => {
    await iso.cleanup();
  });

  const hop = (extra: { rate?: number; batch?: number }) =>
    topologyHop({
      amqpUrl: iso.amqpUrl,
      vhost: iso.vhost,
      managementUrl: MGMT_URL,
      cfg: iso.config(),
      count: 600,
      window: 64,
      users: 50,
      timeoutMs: 30_000,
      ...extra,
    });

  it('carries every message through the shards as fast as its window allows', async function () {
    this.timeout(60_000);
    const r = await hop({});
    expect(r.count).to.equal(600);
    expect(r.queues).to.equal(4);
    expect(r.rate).to.equal(undefined);
    expect(r.perSecond).to.be.greaterThan(600 / 30);
  });

  it('paced: sends batches on schedule, so the hop takes as long as the rate says', async function () {
    this.timeout(60_000);
    // 600 messages at 1,000/s in batches of 50: 12 batches, the last one due 550 ms after the first.
    const r = await hop({ rate: 1000, batch: 50 });
    expect(r.count).to.equal(600);
    expect(r.seconds, 'the last batch leaves on its schedule').to.be.at.least(0.55);
    expect(r.perSecond, 'not faster than the rate asked').to.be.at.most(1000 * (600 / 550));
  });
});
