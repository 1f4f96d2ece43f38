import { expect } from 'chai';
import { startFleet, type Fleet } from '../support/fleet.js';
import { isolate, type Isolation } from '../support/isolation.js';
import { spawnService, type ServiceProcess } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { checkDelivery, sendAsUsers } from '../support/load.js';

describe('ordering after a crash: a sender replica killed with SIGKILL mid-run', function () {
  this.timeout(180_000);
  let iso: Isolation;
  let fleet: Fleet;
  const senders: ServiceProcess[] = [];

  before(async () => {
    iso = await isolate('crash');
    fleet = await startFleet(iso, { dispatchers: 1, senders: 0, overrides: { shards: 8, leaseTtlMs: 2000 } });
    for (let i = 0; i < 3; i++) senders.push(await spawnService('sender', fleet.cfg, { replicaId: `sender-proc-${i}`, logLevel: 'warn' }));
  });
  after(async () => {
    await Promise.all(senders.map((s) => s.stop()));
    await fleet?.close();
    await iso?.cleanup();
  });

  it('loses nothing, sends nothing twice, and keeps every user in order', async () => {
    const users = Array.from({ length: 100 }, (_, i) => `1555200${String(i).padStart(4, '0')}`);
    const load = sendAsUsers(fleet, users, 20, { concurrency: 25 });
    await waitFor(() => fleet.sim.accepted().length >= 600, { timeoutMs: 60_000, what: '600 messages at the provider' });
    const killedAt = Date.now();
    await senders[0].kill();
    const accepted = await load;
    const report = await checkDelivery(fleet, accepted, { timeoutMs: 90_000 });
    // The broken-order window: the longest gap in deliveries after the kill (shards move after the lease TTL).
    const after = fleet.sim.accepted().filter((e) => e.receivedAt >= killedAt).map((e) => e.receivedAt);
    let gap = 0;
    for (let i = 1; i < after.length; i++) gap = Math.max(gap, after[i] - after[i - 1]);
    console.log(`      crash audit: ${JSON.stringify({ ...report, misordered: report.misordered.length, longestGapAfterKillMs: gap })}`);
    expect(report.missing, 'lost').to.equal(0);
    expect(report.duplicates, 'duplicated').to.equal(0);
    expect(report.misordered, 'users out of order').to.deep.equal([]);
  });
});
