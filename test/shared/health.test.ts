import { expect } from 'chai';
import amqplib from 'amqplib';
import { request } from 'undici';
import { assertTopology } from '../../shared/amqp/topology/assert.js';
import { useFleet } from '../support/use-fleet.js';
import { waitFor } from '../support/wait.js';

/**
 * Health tells the truth: a worker whose consumer cannot consume goes unready, and once that has
 * lasted HEALTH_STUCK_AFTER_MS its liveness fails too (so Kubernetes restarts it); both come back by
 * themselves when the lane does.
 */
describe('health: a worker that cannot consume is unready, then not live', function () {
  this.timeout(60_000);

  const t = useFleet('health', { senders: 0, overrides: { healthStuckAfterMs: 1500 } });

  const probe = async (path: '/readyz' | '/healthz') => {
    const res = await request(`http://127.0.0.1:${t.fleet.dispatchers[0].metricsPort}${path}`);
    return { status: res.statusCode, body: (await res.body.json()) as { failing: Record<string, { reason: string }> } };
  };

  it('reports the lane it does not consume, fails liveness after the stuck time, and recovers', async () => {
    expect((await probe('/readyz')).status).to.equal(200);
    expect((await probe('/healthz')).status).to.equal(200);
    const urgent = t.fleet.dispatchers[0].rt.topology.names.urgent('dispatch');
    // The queue goes away under the consumer (deleted in the management UI, a node that lost it).
    const conn = await amqplib.connect(t.iso.amqpUrl);
    const ch = await conn.createChannel();
    await ch.deleteQueue(urgent);
    await ch.close();

    const unready = await waitFor(
      async () => {
        const r = await probe('/readyz');
        return r.status === 503 ? r : null;
      },
      { what: '/readyz to go red' },
    );
    expect(unready.body.failing.consume.reason).to.include(urgent);
    const stuck = await waitFor(
      async () => {
        const r = await probe('/healthz');
        return r.status === 503 ? r : null;
      },
      { what: '/healthz to fail after HEALTH_STUCK_AFTER_MS' },
    );
    expect(stuck.body.failing).to.have.property('consume');

    // The lane comes back (topology asserted again): the consumer resubscribes, both probes pass.
    await assertTopology(conn, t.fleet.dispatchers[0].rt.topology, { mode: 'assert', vhost: t.iso.vhost, managementUrl: t.fleet.cfg.managementUrl });
    await conn.close();
    await waitFor(async () => (await probe('/readyz')).status === 200, { what: '/readyz to recover', timeoutMs: 40_000 });
    expect((await probe('/healthz')).status).to.equal(200);
  });
});
