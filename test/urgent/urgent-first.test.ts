/**
 * URGENT_HOLD_MS against the real thing: a sender consuming both lanes, a backlog in its shards, a
 * simulator that answers at once except for the urgent message's recipient (1 s, a slow-answer
 * rule). While the urgent call is at the simulator, the sender starts no new ordered call — and
 * with a short hold it still does, so the ordered lanes are never starved.
 */
import { expect } from 'chai';
import { startSender, type Sender } from '../../services/sender/service.js';
import { useFleet } from '../support/use-fleet.js';
import { queueDepths } from '../support/isolation.js';
import { sendAsUsers } from '../support/load.js';
import { waitFor } from '../support/wait.js';

const URGENT_LATENCY_MS = 1000;

describe('urgent first inside a shared replica (URGENT_HOLD_MS)', function () {
  this.timeout(180_000);
  let backlogIds: Set<string>;
  let n = 0;

  // No rate limits: the sender sends the backlog as fast as it can.
  const t = useFleet('urgent-first', {
    senders: 0,
    overrides: { shards: 4, whatsappThroughputPerSecond: 0, whatsappPairIntervalMs: 0 },
    simulator: { keepBodies: false },
  });
  before(async () => {
    const users = Array.from({ length: 2000 }, (_, i) => `1555730${String(i).padStart(4, '0')}`);
    const backlog = await sendAsUsers(t.fleet, users, 6, { concurrency: 50 });
    backlogIds = new Set([...backlog.values()].flat());
    const shards = Array.from({ length: 4 }, (_, i) => t.fleet.ingress.rt.topology.names.shardQueue('send', i));
    await waitFor(async () => Object.values(await queueDepths(t.iso.amqpUrl, shards)).reduce((a, b) => a + b, 0) === backlogIds.size, {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: 'the whole backlog in the send shards',
    });
  });

  /** Starts a sender with this hold, lets it get busy, sends one urgent message; the normal calls that reached the simulator while the urgent one was there. */
  async function normalCallsDuringUrgent(urgentHoldMs: number): Promise<{ during: number; sender: Sender }> {
    for (const s of t.fleet.senders.splice(0)) await s.close();
    const sender = await startSender({ ...t.fleet.cfg, replicaId: `sender-hold-${urgentHoldMs}`, urgentHoldMs });
    t.fleet.senders.push(sender);
    const delivered = () => t.fleet.sim.accepted().filter((e) => e.id && backlogIds.has(e.id)).length;
    const before = delivered();
    await waitFor(() => delivered() >= before + 100, { timeoutMs: 30_000, what: 'the sender busy with the backlog' });
    const to = `155574${String(n++).padStart(5, '0')}`;
    t.fleet.sim.setFaults({ rules: [{ to, latencyMs: URGENT_LATENCY_MS, times: 1 }] });
    const r = await t.fleet.send({ to, type: 'text', text: { body: 'OTP' }, priority: 'urgent' });
    expect(r.status).to.equal(202);
    const urgent = await waitFor(() => t.fleet.sim.accepted().find((e) => e.id === r.body.id), {
      timeoutMs: 20_000,
      what: 'the urgent message at the simulator',
    });
    // Wait until the urgent call has been answered (and a little more), then look at the window.
    await waitFor(() => Date.now() > urgent.receivedAt + URGENT_LATENCY_MS + 100, { timeoutMs: 5_000, what: 'the urgent call answered' });
    // From shortly after the urgent call arrived (calls that had passed the hold already may still
    // arrive) to shortly before its answer.
    const during = t.fleet.sim
      .accepted()
      .filter(
        (e) => e.id && backlogIds.has(e.id) && e.receivedAt > urgent.receivedAt + 60 && e.receivedAt < urgent.receivedAt + URGENT_LATENCY_MS - 100,
      ).length;
    return { during, sender };
  }

  it('starts no new ordered call while an urgent one is in flight', async () => {
    const { during, sender } = await normalCallsDuringUrgent(5_000);
    expect(during, 'normal calls started while the urgent call was at the simulator').to.equal(0);
    const held = (await sender.rt.metrics.urgentHoldSeconds.get()).values.find((v) => v.labels.stage === 'send')?.value ?? 0;
    expect(held, 'postmaster_urgent_hold_seconds_total{stage="send"}').to.be.at.least((URGENT_LATENCY_MS - 50) / 1000);
  });

  it('with a short hold, ordered calls go on while the urgent one is still in flight', async () => {
    const { during } = await normalCallsDuringUrgent(100);
    expect(during, 'normal calls while the urgent call was at the simulator').to.be.above(50);
  });

  it('with URGENT_HOLD_MS=0, ordered calls go on as before', async () => {
    const { during } = await normalCallsDuringUrgent(0);
    expect(during).to.be.above(100);
  });
});
