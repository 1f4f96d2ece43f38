import { expect } from 'chai';
import { infraPids } from '../../scripts/bench/cpu.js';
import { createSpace, MGMT_URL, type BenchSpace } from '../../scripts/bench/isolation.js';
import { measurePeer, type PeerKind } from '../../scripts/bench/peers/measure.js';
import { startProvider, type Provider } from '../../scripts/bench/provider.js';
import { QUICK, type Sizes } from '../../scripts/bench/sizes.js';

/**
 * The bench's peers (the amqplib and BullMQ pipelines Postmaster is compared with) against the real
 * broker and Redis, a few hundred messages each: every message reaches the provider exactly once,
 * so a peer cannot look fast by losing or skipping messages, and its burst stays in its queue.
 */
describe('bench: the peers deliver every message exactly once', () => {
  const sizes: Sizes = {
    ...QUICK,
    pipeline: { warmup: 50, count: 300, users: 40, concurrency: 2, batchSize: 50 },
    burst: { ...QUICK.burst, batchSize: 50, users: 40, maxAcceptMs: 30_000 },
    peerBurst: 200,
    drainTimeoutMs: 60_000,
  };
  let space: BenchSpace;
  let provider: Provider;
  before(async () => {
    space = await createSpace();
    provider = await startProvider();
  });
  after(async () => {
    await provider?.child.stop(5000);
    await space?.cleanup();
  });

  for (const kind of ['amqp', 'bullmq'] as PeerKind[]) {
    it(`${kind}: the warm-up and the measured messages each reach the provider once; the burst stays queued`, async function () {
      this.timeout(120_000);
      await provider.ledger.reset();
      const infra = await infraPids(MGMT_URL, space.redis);
      const r = await measurePeer({ kind, space, provider, sizes, infra, clientConnections: 4, log: () => {} });
      const sent = sizes.pipeline.warmup + sizes.pipeline.count;
      expect(await provider.ledger.stats()).to.deep.equal({ received: sent, delivered: sent, duplicates: 0 });
      const ids = (await provider.ledger.entriesAfter(0)).map((e) => e.id);
      expect(new Set(ids).size).to.equal(sent);
      expect(r.perSecond).to.be.greaterThan(0);
      expect(r.burst.accepted).to.equal(sizes.peerBurst);
      expect(r.burst.held).to.equal(sizes.peerBurst);
    });
  }
});
