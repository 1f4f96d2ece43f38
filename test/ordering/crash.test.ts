import { expect } from 'chai';
import { useFleet } from '../support/use-fleet.js';
import { spawnService, type ServiceProcess } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { checkDelivery, sendAsUsers } from '../support/load.js';

describe('ordering after a crash: a sender replica killed with SIGKILL mid-run', function () {
  this.timeout(180_000);
  const senders: ServiceProcess[] = [];

  // Status webhooks flow back (simulator → ingress → dispatcher → status store): they are how the
  // sender resolves a message the killed replica may have sent just before dying.
  const t = useFleet('crash', { dispatchers: 1, senders: 0, statusWebhooks: ['sent'], overrides: { shards: 8, leaseTtlMs: 2000 } });
  before(async () => {
    t.defer('stop the sender processes', () => Promise.all(senders.map((s) => s.stop())));
    for (let i = 0; i < 3; i++) senders.push(await spawnService('sender', t.fleet.cfg, { replicaId: `sender-proc-${i}`, logLevel: 'warn' }));
  });

  it('loses nothing, sends nothing twice, and keeps every user in order', async () => {
    const users = Array.from({ length: 100 }, (_, i) => `1555200${String(i).padStart(4, '0')}`);
    const load = sendAsUsers(t.fleet, users, 20, { concurrency: 25 });
    await waitFor(() => t.fleet.sim.accepted().length >= 600, { timeoutMs: 60_000, what: '600 messages at the provider' });
    const killedAt = Date.now();
    await senders[0].kill();
    const accepted = await load;
    const report = await checkDelivery(t.fleet, accepted, { timeoutMs: 90_000 });
    // The stall of the users whose shards the killed replica held: the longest gap, across the kill,
    // between a user's consecutive deliveries (their shards move after the lease TTL).
    let stall = 0;
    const byUser = new Map<string, number[]>();
    for (const e of t.fleet.sim.accepted()) byUser.set(e.to, [...(byUser.get(e.to) ?? []), e.receivedAt]);
    for (const times of byUser.values()) {
      for (let i = 1; i < times.length; i++) if (times[i - 1] <= killedAt && times[i] >= killedAt) stall = Math.max(stall, times[i] - killedAt);
    }
    console.log(`      crash audit: ${JSON.stringify({ ...report, misordered: report.misordered.length, longestUserStallAfterKillMs: stall })}`);
    expect(report.missing, 'lost').to.equal(0);
    expect(report.duplicates, 'duplicated').to.equal(0);
    expect(report.misordered, 'users out of order').to.deep.equal([]);
  });
});
