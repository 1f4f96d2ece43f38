import { expect } from 'chai';
import { startDispatcher } from '../../services/dispatcher/service.js';
import { startSender } from '../../services/sender/service.js';
import { ownedShards as owned, shardsSettled } from '../support/fleet.js';
import { useFleet } from '../support/use-fleet.js';
import { waitFor } from '../support/wait.js';
import { checkDelivery, sendAsUsers } from '../support/load.js';

const SHARDS = 16;

describe('ordering at fleet scale: shards spread over replicas, safe hand-over', function () {
  this.timeout(180_000);

  const t = useFleet('replicas', { dispatchers: 3, senders: 3, overrides: { shards: SHARDS, leaseTtlMs: 1500 } });

  it('spreads the shards: no replica owns more than ceil(SHARDS / replicas) + 1 once settled', async () => {
    // The first replica to start owns everything until the others have joined; then it hands over.
    const limit = Math.ceil(SHARDS / 3) + 1;
    const balanced = () => [...owned(t.fleet.dispatchers), ...owned(t.fleet.senders)].every((s) => s.length <= limit);
    await waitFor(() => shardsSettled(t.fleet.dispatchers, SHARDS) && shardsSettled(t.fleet.senders, SHARDS) && balanced(), {
      timeoutMs: 20_000,
      what: 'shards settled and spread',
    }).catch(() => undefined);
    expect(shardsSettled(t.fleet.dispatchers, SHARDS) && shardsSettled(t.fleet.senders, SHARDS), 'every shard has exactly one owner').to.equal(true);
    for (const shards of [...owned(t.fleet.dispatchers), ...owned(t.fleet.senders)]) {
      expect(shards.length).to.be.at.least(1).and.at.most(limit);
    }
  });

  it('delivers 200 users × 20 messages exactly once and in order while replicas go 3 → 1 → 3', async () => {
    const users = Array.from({ length: 200 }, (_, i) => `1555100${String(i).padStart(4, '0')}`);
    let phase = 0;
    const load = sendAsUsers(t.fleet, users, 20, {
      concurrency: 40,
      onProgress: (accepted) => {
        if (phase === 0 && accepted >= 1300) phase = 1;
        if (phase === 2 && accepted >= 2700) phase = 3;
      },
    });
    // Scale down gracefully once a third is accepted, up again at two thirds, while load runs.
    await waitFor(() => phase >= 1, { timeoutMs: 60_000, what: 'a third of the load' });
    const gone = [...t.fleet.dispatchers.splice(1), ...t.fleet.senders.splice(1)];
    await Promise.all(gone.map((s) => s.close()));
    phase = 2;
    await waitFor(() => phase >= 3, { timeoutMs: 60_000, what: 'two thirds of the load' });
    for (let i = 1; i <= 2; i++) {
      t.fleet.dispatchers.push(await startDispatcher({ ...t.fleet.cfg, replicaId: `dispatcher-new-${i}` }));
      t.fleet.senders.push(await startSender({ ...t.fleet.cfg, replicaId: `sender-new-${i}` }));
    }
    const accepted = await load;
    expect(accepted.size).to.equal(200);
    const report = await checkDelivery(t.fleet, accepted, { timeoutMs: 90_000 });
    expect(report.missing, 'lost').to.equal(0);
    expect(report.duplicates, 'duplicated').to.equal(0);
    expect(report.misordered, 'users out of order').to.deep.equal([]);
    await waitFor(() => shardsSettled(t.fleet.dispatchers, SHARDS) && shardsSettled(t.fleet.senders, SHARDS), {
      timeoutMs: 20_000,
      what: 'shards settled again',
    });
  });
});
