import { expect } from 'chai';
import { useFleet } from '../support/use-fleet.js';
import { drainQueue } from '../../scripts/lib/dlq.js';
import { audit, sendAsUsers } from '../support/load.js';
import { waitFor } from '../support/wait.js';

describe('failures: a randomised run of transient, permanent and throttling faults', function () {
  this.timeout(240_000);

  const t = useFleet('random', {
    overrides: { shards: 8 },
    simulator: {
      seed: 20261123,
      faults: {
        errorRate: 0.15,
        errorMix: [
          { status: 503, code: 131000, weight: 5 },
          { status: 400, code: 131026, weight: 1 },
          { status: 429, code: 130429, weight: 3 },
        ],
      },
    },
  });

  it('ends with every message delivered exactly once or dead-lettered, each user in acceptance order', async () => {
    const users = Array.from({ length: 100 }, (_, i) => `1555400${String(i).padStart(4, '0')}`);
    const accepted = await sendAsUsers(t.fleet, users, 20, { concurrency: 25 });
    const all = [...accepted.values()].flat();
    expect(all).to.have.length(2000);
    const dlq = t.fleet.ingress.rt.topology.names.dlq;
    const dead = new Set<string>();
    // Settled when every accepted message is either at the provider or in the DLQ.
    await waitFor(
      async () => {
        for (const d of await drainQueue(t.iso.amqpUrl, dlq)) if (d.id) dead.add(d.id);
        const delivered = new Set(t.fleet.sim.accepted().map((e) => e.id));
        return all.every((id) => delivered.has(id) || dead.has(id));
      },
      { timeoutMs: 180_000, intervalMs: 500, what: 'every message delivered or dead-lettered' },
    );
    const report = audit(t.fleet.sim.accepted(), accepted, dead);
    const stats = { ...report, misordered: report.misordered.length, deadLettered: dead.size, providerCalls: t.fleet.sim.ledger().length };
    console.log(`      randomised audit: ${JSON.stringify(stats)}`);
    expect(dead.size, 'some permanent failures were dead-lettered').to.be.greaterThan(0);
    expect(dead.size, 'only the unlucky few are dead-lettered').to.be.below(200);
    expect(report.delivered + dead.size).to.equal(2000);
    expect(report.missing).to.equal(0);
    expect(report.duplicates).to.equal(0);
    expect(report.misordered).to.deep.equal([]);
    for (const id of dead)
      expect(
        t.fleet.sim.accepted().some((e) => e.id === id),
        `${id} dead and delivered`,
      ).to.equal(false);
  });
});
