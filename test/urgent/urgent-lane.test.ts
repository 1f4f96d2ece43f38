import { expect } from 'chai';
import { startSender } from '../../services/sender/service.js';
import { useFleet } from '../support/use-fleet.js';
import { queueDepths } from '../support/isolation.js';
import { sendAsUsers } from '../support/load.js';
import { waitFor } from '../support/wait.js';

describe('urgent lane: priority queues that jump any backlog', function () {
  this.timeout(240_000);

  // No sender at first: the backlog builds up in the send shards, as during a campaign.
  const t = useFleet('urgent', { senders: 0, overrides: { shards: 8 }, simulator: { faults: { latencyMs: 100 }, keepBodies: false } });

  it('rejects an unknown priority with a 400 naming priority', async () => {
    const r = await t.fleet.send({ to: '15557000000', type: 'text', text: { body: 'x' }, priority: 'asap' });
    expect(r.status).to.equal(400);
    expect(r.body.field).to.equal('priority');
  });

  it('delivers 10 urgent messages before half of a 3,000-message backlog, and reports their latency', async () => {
    const users = Array.from({ length: 300 }, (_, i) => `1555700${String(i).padStart(4, '0')}`);
    const backlog = await sendAsUsers(t.fleet, users, 10, { concurrency: 50 });
    const backlogIds = new Set([...backlog.values()].flat());
    expect(backlogIds.size).to.equal(3000);
    const shards = Array.from({ length: 8 }, (_, i) => t.fleet.ingress.rt.topology.names.shardQueue('send', i));
    await waitFor(async () => Object.values(await queueDepths(t.iso.amqpUrl, shards)).reduce((a, b) => a + b, 0) === 3000, {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: 'the whole backlog in the send shards',
    });
    t.fleet.senders.push(await startSender({ ...t.fleet.cfg, replicaId: 'sender-0' }));
    const delivered = () => t.fleet.sim.accepted().filter((e) => e.id && backlogIds.has(e.id)).length;
    await waitFor(() => delivered() >= 100, { timeoutMs: 30_000, what: 'the sender busy with the backlog' });

    const urgent: Array<{ id: string; at: number }> = [];
    for (let i = 0; i < 10; i++) {
      const at = Date.now();
      const r = await t.fleet.send({ to: `1555710${String(i).padStart(4, '0')}`, type: 'text', text: { body: `OTP ${i}` }, priority: 'urgent', urgency: 9 });
      expect(r.status).to.equal(202);
      expect(r.body.lane).to.equal('send.urgent');
      urgent.push({ id: r.body.id, at });
    }
    const ids = new Set(urgent.map((u) => u.id));
    await waitFor(() => t.fleet.sim.accepted().filter((e) => e.id && ids.has(e.id)).length === 10, { timeoutMs: 30_000, what: 'the 10 urgent messages' });
    const entries = t.fleet.sim.accepted();
    const latencies: number[] = [];
    for (const u of urgent) {
      const idx = entries.findIndex((e) => e.id === u.id);
      const backlogBefore = entries.slice(0, idx).filter((e) => e.id && backlogIds.has(e.id)).length;
      expect(backlogBefore, `backlog delivered before urgent ${u.id}`).to.be.below(1500);
      latencies.push(entries[idx].receivedAt - u.at);
    }
    latencies.sort((a, b) => a - b);
    console.log(
      `      urgent accept → provider ms (simulator latency 100 ms): p50 ${latencies[4]}, max ${latencies[9]}; backlog delivered meanwhile: ${delivered()}`,
    );
  });

  it('WORKER_LANES splits a stage into an urgent-only and an ordered-only replica, each consuming only its lanes', async () => {
    // The first test's sender is still running: let it finish the backlog, then stop it, so the two
    // below are the only senders.
    const shards = Array.from({ length: 8 }, (_, i) => t.fleet.ingress.rt.topology.names.shardQueue('send', i));
    const inShards = async () => Object.values(await queueDepths(t.iso.amqpUrl, shards)).reduce((a, b) => a + b, 0);
    await waitFor(async () => (await inShards()) === 0, { timeoutMs: 60_000, intervalMs: 250, what: 'the first backlog drained' });
    for (const s of t.fleet.senders.splice(0)) await s.close();
    const urgentOnly = await startSender({ ...t.fleet.cfg, replicaId: 'sender-urgent', workerLanes: 'urgent' });
    t.fleet.senders.push(urgentOnly);
    const normalSent = await t.fleet.send({ to: '15557200001', type: 'text', text: { body: 'normal' } });
    const urgentSent = await t.fleet.send({ to: '15557200002', type: 'text', text: { body: 'OTP' }, priority: 'urgent' });
    expect([normalSent.status, urgentSent.status]).to.deep.equal([202, 202]);
    await waitFor(() => t.fleet.sim.accepted().some((e) => e.id === urgentSent.body.id), {
      timeoutMs: 20_000,
      what: 'the urgent message via the urgent-only sender',
    });
    expect(urgentOnly.worker.ownedShards(), 'an urgent-only replica takes no shards').to.deep.equal([]);
    // The normal message waits in its shard: no replica consumes the ordered lanes yet.
    await waitFor(async () => (await inShards()) === 1, {
      timeoutMs: 20_000,
      intervalMs: 200,
      what: 'the normal message waiting in its send shard',
    });
    expect(t.fleet.sim.accepted().some((e) => e.id === normalSent.body.id)).to.equal(false);

    const orderedOnly = await startSender({ ...t.fleet.cfg, replicaId: 'sender-ordered', workerLanes: 'ordered' });
    t.fleet.senders.push(orderedOnly);
    await waitFor(() => t.fleet.sim.accepted().some((e) => e.id === normalSent.body.id), {
      timeoutMs: 20_000,
      what: 'the normal message via the ordered-only sender',
    });
    await waitFor(() => orderedOnly.worker.ownedShards().length === 8, { timeoutMs: 20_000, what: 'the ordered-only sender owning every shard' });
    // Only the urgent-only replica consumes the urgent lane (the management API's counters lag).
    const urgentQueue = t.fleet.ingress.rt.topology.names.urgent('send');
    await waitFor(async () => (await t.iso.mgmt.queue(t.iso.vhost, urgentQueue)).consumers === 1, {
      timeoutMs: 20_000,
      intervalMs: 500,
      what: 'one consumer on the urgent send lane',
    });
  });
});
