import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { useFleet } from '../support/use-fleet.js';
import { freezableRedis, type FreezableRedis } from '../support/frozen-redis.js';
import { REDIS_URL } from '../support/isolation.js';
import { checkDelivery, sendAsUsers, type Accepted } from '../support/load.js';
import { waitFor } from '../support/wait.js';

/**
 * docs/RELIABILITY.md, "Redis down" and "Redis frozen": a Redis outage is not the messages' fault.
 * The sender's steps that need Redis (the rate limiter's counters, the send ledger, the user holds)
 * wait in place until it answers again; nothing is re-tiered, requeued or dead-lettered, so every
 * user stays in order.
 */
describe('ordering through a Redis outage: the sender waits in place and re-tiers nothing', function () {
  this.timeout(120_000);
  let proxy: FreezableRedis;
  // Shard leases outlast the fault: a replica that cannot renew its lease for LEASE_TTL_MS hands
  // its shards over (their deliveries go back to the queue), which test/ordering/lease-lapse covers.
  const t = useFleet('redis-outage', async () => {
    proxy = await freezableRedis(REDIS_URL);
    return { overrides: { redisUrl: proxy.url, redisCommandTimeoutMs: 400, publishTimeoutMs: 2000, shards: 4, leaseTtlMs: 30_000 } };
  });
  before(() => {
    t.defer('thaw and close the Redis proxy', async () => {
      proxy.thaw();
      await proxy.close();
    });
  });

  it('delivers every message once, each user in order, with no retry, requeue or dead letter', async () => {
    const users = Array.from({ length: 12 }, (_, i) => `1555300${String(i).padStart(4, '0')}`);
    const before = await sendAsUsers(t.fleet, users, 2);
    await waitFor(() => t.fleet.sim.accepted().length >= 24, { timeoutMs: 30_000, what: 'the first 24 messages at the provider' });
    proxy.freeze();
    // The ingress still accepts (without an idempotency key its status record is advisory); the
    // sender meets the frozen Redis at its first step that needs it, for as long as the fault lasts.
    const during = await sendAsUsers(t.fleet, users, 3, { concurrency: 12 });
    await sleep(2500); // the fault's length: several command timeouts and outage backoffs
    expect(t.fleet.sim.accepted().length, 'nothing sent while Redis is frozen').to.equal(24);
    proxy.thaw();
    const accepted: Accepted = new Map(users.map((u) => [u, [...(before.get(u) ?? []), ...(during.get(u) ?? [])]]));
    const report = await checkDelivery(t.fleet, accepted, { timeoutMs: 60_000 });
    expect(report.missing, 'lost').to.equal(0);
    expect(report.duplicates, 'duplicated').to.equal(0);
    expect(report.misordered, 'users out of order').to.deep.equal([]);
    const sender = t.fleet.senders[0].rt.metrics;
    const total = async (m: { get(): Promise<{ values: Array<{ value: number }> }> }) => (await m.get()).values.reduce((n, v) => n + v.value, 0);
    expect(await total(sender.retried), 'messages sent to a retry tier').to.equal(0);
    expect(await total(sender.deadLettered), 'messages dead-lettered').to.equal(0);
    expect(await total(sender.consumed), 'deliveries: one each, no requeue').to.equal(users.length * 5);
  });
});
