import { expect } from 'chai';
import amqplib from 'amqplib';
import { assertTopology, TopologyError } from '../../shared/amqp/topology/assert.js';
import { buildTopology } from '../../shared/amqp/topology/declaration.js';
import { isolate, MGMT_URL, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';

describe('topology assertion against the broker', function () {
  let iso: Isolation;
  const topology = buildTopology({ prefix: 'pm', shards: 4, retryTiersMs: [1000, 5000], urgentQueueType: 'classic', deliveryLimit: 3 });

  before(async () => {
    iso = await isolate('topology');
  });
  after(async () => iso.cleanup());

  it('declares every exchange, queue, binding and policy, as seen through the management API', async () => {
    const conn = await amqplib.connect(iso.amqpUrl);
    try {
      await assertTopology(conn, topology, { mode: 'assert', managementUrl: MGMT_URL, vhost: iso.vhost });
      // A second assertion (another replica starting) is a no-op, not an error.
      await assertTopology(conn, topology, { mode: 'assert', managementUrl: MGMT_URL, vhost: iso.vhost });
    } finally {
      await conn.close();
    }
    const v = encodeURIComponent(iso.vhost);
    const exchanges = await iso.mgmt.call<Array<{ name: string; type: string }>>('GET', `/api/exchanges/${v}`);
    const byName = new Map(exchanges.map((e) => [e.name, e.type]));
    expect(byName.get('pm.dispatch.shards')).to.equal('direct');
    expect(byName.get('pm.send.shards')).to.equal('direct');
    expect(byName.get('pm.retry.return')).to.equal('headers');
    expect(byName.get('pm.retry.1s')).to.equal('fanout');
    expect(byName.get('pm.dead')).to.equal('fanout');

    const queues = await iso.mgmt.queues(iso.vhost);
    const q = new Map(queues.map((x) => [x.name, x]));
    for (const name of ['pm.dispatch.00', 'pm.dispatch.03', 'pm.send.00', 'pm.send.03']) {
      expect(q.get(name)?.arguments).to.include({ 'x-queue-type': 'quorum', 'x-single-active-consumer': true });
    }
    expect(q.get('pm.dispatch.urgent')?.arguments).to.include({ 'x-max-priority': 9 });
    expect(q.get('pm.retry.5s')?.arguments).to.include({ 'x-message-ttl': 5000, 'x-dead-letter-exchange': 'pm.retry.return' });
    expect(q.get('pm.dlq')?.arguments).to.include({ 'x-queue-type': 'quorum' });
    expect(queues.map((x) => x.name)).to.have.length(topology.queues.length);

    const bindings = await iso.mgmt.call<Array<{ source: string; destination: string; routing_key: string; arguments: Record<string, unknown> }>>(
      'GET',
      `/api/bindings/${v}`,
    );
    // Each shard queue under its own key: the publisher picks the shard (shard.ts), not a ring.
    const shardBindings = bindings.filter((b) => b.source === 'pm.dispatch.shards');
    expect(shardBindings.map((b) => `${b.routing_key}>${b.destination}`).sort()).to.deep.equal([
      '00>pm.dispatch.00',
      '01>pm.dispatch.01',
      '02>pm.dispatch.02',
      '03>pm.dispatch.03',
    ]);
    const back = bindings.find((b) => b.source === 'pm.retry.return' && b.destination === 'pm.send.shards');
    expect(back?.arguments).to.include({ 'postmaster-lane': 'send', 'x-match': 'all' });

    const policies = await iso.mgmt.call<Array<{ name: string; definition: Record<string, unknown> }>>('GET', `/api/policies/${v}`);
    const shards = policies.find((p) => p.name === 'pm.shards');
    expect(shards?.definition).to.include({ 'delivery-limit': 3, 'dead-letter-exchange': 'pm.dead', 'dead-letter-strategy': 'at-least-once' });
    // Policies apply to existing queues asynchronously.
    await waitFor(async () => (await iso.mgmt.queue(iso.vhost, 'pm.send.02')).policy === 'pm.shards', { what: 'policy pm.shards on pm.send.02' });
  });

  it('check mode verifies without declaring and names the missing object', async () => {
    const other = buildTopology({ ...topology.options, prefix: 'absent' });
    const conn = await amqplib.connect(iso.amqpUrl);
    try {
      const err = await assertTopology(conn, other, { mode: 'check', vhost: iso.vhost }).then(
        () => null,
        (e: Error) => e,
      );
      expect(err).to.be.instanceOf(TopologyError);
      expect(err!.message).to.match(/exchange absent\.retry\.return in vhost pmtest-.*NOT_FOUND/);
    } finally {
      await conn.close();
    }
  });
});
