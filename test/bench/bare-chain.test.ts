import amqplib from 'amqplib';
import { expect } from 'chai';
import { bareChain } from '../../scripts/bench/bare-chain.js';
import { isolate, MGMT_URL, type Isolation } from '../support/isolation.js';

/**
 * The bench's bare chain against the real broker: the publisher, a relay process and a forward
 * process on the lanes' topology, and the bare HTTP server, each message carried once through both
 * lanes to the server, and nothing of it left behind.
 */
describe('bench: the bare chain', () => {
  let iso: Isolation;
  beforeEach(async () => {
    iso = await isolate('barechain');
  });
  afterEach(async () => {
    await iso.cleanup();
  });

  it('carries every message once through the dispatch and send lanes to the HTTP server, times a paced load, then removes its topology', async function () {
    this.timeout(120_000);
    const r = await bareChain({ amqpUrl: iso.amqpUrl, vhost: iso.vhost, managementUrl: MGMT_URL, cfg: iso.config(), warmup: 100, count: 1000, users: 50, window: 100, timeoutMs: 60_000, latency: { rate: 500, batch: 50, durationMs: 1000 } });
    expect(r.count).to.equal(1000);
    expect(r.handled, 'posted to the server: each warm-up and measured message once (before the latency phase)').to.equal(1100);
    // The latency phase: 500/s in batches of 50 for 1 s, every message's publish → answer.
    expect(r.latency!.count).to.equal(500);
    expect(r.latency!.p50).to.be.greaterThan(0);
    expect(r.latency!.p50).to.be.at.most(r.latency!.p99);
    expect(r.latency!.p99).to.be.at.most(r.latency!.max).and.below(10_000);
    expect(r.queues).to.equal(2 * iso.config().shards);
    expect(Object.keys(r.cpu!.byProcess)).to.include.members(['publisher', 'relay', 'forward', 'server']);

    const conn = await amqplib.connect(iso.amqpUrl);
    try {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      const gone = await ch.checkQueue('bench-bare-chain.send.00').then(
        () => false,
        () => true,
      );
      expect(gone, 'its shard queues are deleted').to.equal(true);
    } finally {
      await conn.close().catch(() => {});
    }
  });
});
