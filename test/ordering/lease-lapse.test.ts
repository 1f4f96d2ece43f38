import { expect } from 'chai';
import { useFleet } from '../support/use-fleet.js';
import { spawnService, type ServiceProcess } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { checkDelivery, sendAsUsers } from '../support/load.js';
import { keyspace } from '../../shared/platform/redis.js';

const SHARDS = 4;
const TTL_MS = 1500;

/**
 * A shard lease that runs out while its owner is alive: the owner is frozen (SIGSTOP, as a long GC
 * pause or a CPU-throttled container would) past LEASE_TTL_MS with deliveries in hand, the other
 * sender takes its leases and subscribes, then the owner runs again. Single active consumer keeps
 * the newcomer waiting while the old subscription exists; the old owner must finish what it holds
 * before it lets go (membership.ts), or the newcomer sends a user's later messages first.
 */
describe('ordering when a shard lease runs out under a live owner (a frozen sender)', function () {
  this.timeout(180_000);
  let frozen: ServiceProcess;
  let other: ServiceProcess;

  const t = useFleet('lease-lapse', {
    dispatchers: 1,
    senders: 0,
    statusWebhooks: ['sent'],
    simulator: { faults: { latencyMs: 40 } },
    overrides: { shards: SHARDS, leaseTtlMs: TTL_MS },
  });
  before(async () => {
    t.defer('stop the sender processes', () => Promise.all([frozen, other].filter(Boolean).map((s) => s.stop())));
    frozen = await spawnService('sender', t.fleet.cfg, { replicaId: 'sender-frozen', logLevel: 'warn' });
    other = await spawnService('sender', t.fleet.cfg, { replicaId: 'sender-other', logLevel: 'warn' });
  });

  /** A send-stage series of a sender's /metrics (0 when absent). */
  const metric = async (p: ServiceProcess, name: string): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${p.metricsPort}/metrics`)).text();
    return Number(new RegExp(`^${name}\\{[^}]*stage="send"[^}]*\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  };

  const leaseOwners = async (): Promise<Array<string | null>> => {
    const keys = keyspace(t.iso.redisKeyPrefix, t.fleet.cfg.topologyPrefix);
    return Promise.all(Array.from({ length: SHARDS }, (_, s) => t.iso.redis.get(keys('lease', 'send', s))));
  };

  it('loses nothing, sends nothing twice and keeps every user in order across the freeze', async () => {
    // Both senders hold shards before the load starts.
    await waitFor(
      async () => {
        const owners = await leaseOwners();
        return owners.every((o) => o !== null) && owners.includes('sender-frozen') && owners.includes('sender-other');
      },
      { timeoutMs: 20_000, what: 'the shards spread over both senders' },
    );

    const users = Array.from({ length: 60 }, (_, i) => `1555300${String(i).padStart(4, '0')}`);
    const load = sendAsUsers(t.fleet, users, 20, { concurrency: 20 });
    await waitFor(() => t.fleet.sim.accepted().length >= 200, { timeoutMs: 60_000, what: '200 messages at the provider' });

    frozen.pause();
    // Its membership and leases run out; the other sender takes every lease and subscribes to every
    // shard (consume-ok: registered, waiting behind the frozen one's subscriptions).
    await waitFor(async () => (await leaseOwners()).every((o) => o === 'sender-other') && (await metric(other, 'postmaster_shards_owned')) === SHARDS, {
      timeoutMs: 15_000,
      what: 'the other sender holding every lease and subscribed to every shard',
    }).finally(() => frozen.resume());

    const accepted = await load;
    const report = await checkDelivery(t.fleet, accepted, { timeoutMs: 90_000 });
    console.log(`      lease-lapse audit: ${JSON.stringify({ ...report, misordered: report.misordered.length })}`);
    expect(report.missing, 'lost').to.equal(0);
    expect(report.duplicates, 'duplicated').to.equal(0);
    expect(report.misordered, 'users out of order').to.deep.equal([]);
    // The scenario happened: the frozen sender found its leases gone when it ran again, and says so.
    expect(frozen.output(), 'the frozen sender saw its leases run out').to.contain('shard lease ran out');
    expect(await metric(frozen, 'postmaster_shard_leases_lost_total'), 'leases lost, counted by the frozen sender').to.be.at.least(1);
  });
});
