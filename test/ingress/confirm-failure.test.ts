import { expect } from 'chai';
import { useFleet } from '../support/use-fleet.js';
import { queueDepths } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';

describe('ingress: no 202 without a broker confirm', function () {
  // No sender: the shard queues keep what they get, so the length limit below is reached.
  const t = useFleet('confirm', { dispatchers: 0, senders: 0 });

  it('answers 503 with Retry-After when the broker nacks the publish, and 202 again once it confirms', async () => {
    // A higher-priority policy makes every send shard refuse messages beyond 2: the broker nacks.
    const shards = Array.from({ length: t.fleet.cfg.shards }, (_, i) => t.fleet.ingress.rt.topology.names.shardQueue('send', i));
    await t.iso.mgmt.putPolicy(t.iso.vhost, {
      name: 'test-full',
      pattern: '\\.send\\.\\d+$',
      applyTo: 'queues',
      priority: 100,
      definition: { 'max-length': 2, overflow: 'reject-publish' },
    });
    await waitFor(
      async () => (await t.iso.mgmt.queues(t.iso.vhost)).filter((q) => shards.includes(q.name) && q.policy === 'test-full').length === shards.length,
      {
        what: 'the test-full policy on every send shard',
      },
    );
    const answers: Array<{ status: number; body: any; headers: Record<string, unknown> }> = [];
    for (let i = 0; i < 6; i++) answers.push(await t.fleet.send({ to: '15557770001', type: 'text', text: { body: `m${i}` } }));
    const refused = answers.filter((a) => a.status === 503);
    const accepted = answers.filter((a) => a.status === 202);
    expect(refused.length, 'some publishes refused').to.be.greaterThan(0);
    expect(refused.length + accepted.length).to.equal(answers.length);
    expect(refused[0].body.error).to.equal('unavailable');
    expect(refused[0].headers['retry-after']).to.equal('5');
    // Every 202 is in the broker, and nothing refused is.
    const depth = Object.values(await queueDepths(t.iso.amqpUrl, shards)).reduce((a, b) => a + b, 0);
    expect(depth).to.equal(accepted.length);

    // Lift the limit by raising it: on RabbitMQ 3.10 a quorum queue whose max-length policy is
    // deleted keeps refusing publishes (checked by hand; see docs/OPERATIONS.md).
    await t.iso.mgmt.putPolicy(t.iso.vhost, {
      name: 'test-full',
      pattern: '\\.send\\.\\d+$',
      applyTo: 'queues',
      priority: 100,
      definition: { 'max-length': 100_000, overflow: 'reject-publish' },
    });
    // The quorum queue applies the new limit asynchronously; the client retries as told.
    const again = await waitFor(
      async () => {
        const r = await t.fleet.send({ to: '15557770001', type: 'text', text: { body: 'accepted' } });
        return r.status === 202 ? r : null;
      },
      { what: 'a 202 after the limit is lifted', intervalMs: 200 },
    );
    expect(again.body.id).to.be.a('string');
  });
});
