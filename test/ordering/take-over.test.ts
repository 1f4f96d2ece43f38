import { expect } from 'chai';
import amqplib from 'amqplib';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRuntime, type Runtime } from '../../shared/amqp/runtime.js';
import { StageMetrics } from '../../shared/stage/metrics.js';
import { StaticAssigner } from '../../shared/stage/assigner.js';
import { StageWorker } from '../../shared/stage/worker.js';
import { silentLogger } from '../../shared/platform/logger.js';
import { useIsolation } from '../support/use-fleet.js';

/**
 * Taking a shard over can fail (its quorum queue has no leader yet, or is missing): the assigner
 * then gives the lease back and tries again later. The consumer that failed must be gone with it —
 * left behind, its revive timer would subscribe by itself once the queue is back, on a shard this
 * replica holds no lease for, out of reach of the hand-over.
 */
describe('ordering: a shard take-over that fails leaves no consumer behind', function () {
  this.timeout(60_000);
  let rt: Runtime<StageMetrics>;

  const t = useIsolation('take-over');
  before(async () => {
    rt = await createRuntime(t.iso.config({ shards: 2 }), { service: 'sender', metrics: StageMetrics, logger: silentLogger() });
    t.defer('close the runtime', () => rt.close());
  });

  it('does not subscribe to the shard queue by itself once the queue is back', async () => {
    const queue = rt.topology.names.shardQueue('send', 1);
    const spec = await t.iso.mgmt.queue(t.iso.vhost, queue);
    await t.iso.mgmt.call('DELETE', `/api/queues/${encodeURIComponent(t.iso.vhost)}/${encodeURIComponent(queue)}`);

    const worker = new StageWorker(rt, 'send', async () => {}, { assigner: new StaticAssigner(2) });
    let failed: Error | null = null;
    await worker.start().catch((err: Error) => (failed = err));
    expect(failed, 'the take-over of the missing shard failed').to.not.equal(null);
    expect(worker.ownedShards()).to.deep.equal([0]);

    // The queue comes back, as it was declared; a consumer left behind would subscribe within its
    // revive delay (2 s, then 4 s): watch for twice that.
    const conn = await amqplib.connect(t.iso.amqpUrl);
    try {
      const ch = await conn.createChannel();
      await ch.assertQueue(queue, { durable: true, arguments: spec.arguments });
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline) {
        expect((await ch.checkQueue(queue)).consumerCount, 'consumers on the shard nobody took').to.equal(0);
        await sleep(250);
      }
    } finally {
      await conn.close();
      await worker.close();
    }
  });
});
