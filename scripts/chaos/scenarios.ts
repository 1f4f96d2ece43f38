/**
 * The chaos scenarios: each injects one fault into a loaded fleet and undoes it (or lets the
 * "platform" restart what died), returning the fault's window for the recovery measurement.
 */
import amqplib from 'amqplib';
import { Management } from '../../shared/management.js';
import { topologyFromConfig } from '../../shared/runtime.js';
import type { ChaosFleet, FleetShape, Infra } from './fleet.js';
import { portOpen, sleep, waitFor } from './infra.js';
import type { ServiceName } from './processes.js';
import type { RabbitNode } from './rabbit.js';

export interface FaultWindow {
  /** When the fault began and ended (ms epoch). An instantaneous fault (SIGKILL) ends as it begins. */
  faultStart: number;
  faultEnd: number;
  notes: string[];
  /** Buckets of the consistent-hash rings that point at another shard queue after the fault (null: not read). */
  ringMoved?: { moved: number; buckets: number } | null;
}

/** Buckets whose queue differs between two readings of the rings (hashRings). */
export function ringChanges(before: Map<string, string[]>, after: Map<string, string[]>): { moved: number; buckets: number } {
  let moved = 0;
  let buckets = 0;
  for (const [x, ring] of before) {
    const now = after.get(x) ?? [];
    ring.forEach((q, b) => {
      buckets++;
      if (now[b] !== q) moved++;
    });
  }
  return { moved, buckets };
}

/** The scenario note on the rings, `who` being what rebuilt them. */
function ringNote(ringMoved: { moved: number; buckets: number } | null, who: string): string {
  if (ringMoved === null) return 'consistent-hash rings not read';
  if (ringMoved.moved === 0) return `the consistent-hash rings held (${ringMoved.buckets} buckets)`;
  return `${who} rebuilt its consistent-hash rings with ${ringMoved.moved} of ${ringMoved.buckets} buckets on another shard queue: users with messages still in their old shard may be delivered out of order`;
}

export interface ScenarioContext {
  fleet: ChaosFleet;
  infra: Infra;
  log: (line: string) => void;
}

export interface Scenario {
  name: string;
  /** What the scenario does (for docs/RELIABILITY.md). */
  does: string;
  /** Needs the 3-node cluster. */
  cluster?: boolean;
  /** When the fault comes, from the load's start. */
  faultAtMs?: number;
  shape?: FleetShape;
  inject(ctx: ScenarioContext): Promise<FaultWindow>;
}

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** When the ingress's /readyz first matched (ms epoch), or null within `timeoutMs`. */
async function untilIngress(fleet: ChaosFleet, match: (r: { broker?: boolean; blocked?: boolean }) => boolean, timeoutMs: number): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await fetch(`${fleet.ingressUrl}/readyz`).then((x) => x.json() as Promise<{ broker?: boolean; blocked?: boolean }>, () => null);
    if (r && match(r)) return Date.now();
    await sleep(100);
  }
  return null;
}

function killService(service: ServiceName): Scenario {
  return {
    name: `kill -9 ${service}`,
    does: `SIGKILL of one ${service} replica under load; a replacement (new replica id) is started at once, as a Deployment would.`,
    async inject({ fleet }) {
      const r = await fleet.killAndRestart(fleet.find(service));
      return { faultStart: r.killedAt, faultEnd: r.killedAt, notes: [`replacement ready after ${s(r.readyAt - r.killedAt)}`] };
    },
  };
}

/** The node that leads most shard queues of the fleet's vhost (management API field `leader`). */
export async function shardLeader(fleet: ChaosFleet, nodes: RabbitNode[]): Promise<{ node: RabbitNode; leads: number; of: number }> {
  const via = nodes[nodes.length - 1];
  const shard = new RegExp(`^${fleet.cfg.topologyPrefix.replace(/\./g, '\\.')}\\.(dispatch|send)\\.\\d+$`);
  const queues = (await new Management(via.mgmtUrl).queues(fleet.vhost)).filter((q) => shard.test(q.name));
  const counts = new Map<string, number>();
  for (const q of queues) if (q.leader) counts.set(q.leader, (counts.get(q.leader) ?? 0) + 1);
  const [leader, leads] = [...counts].sort((a, b) => b[1] - a[1])[0] ?? [];
  const node = nodes.find((n) => n.node === leader);
  if (!node) throw new Error(`no leader found among ${queues.length} shard queues (${JSON.stringify([...counts])})`);
  return { node, leads, of: queues.length };
}

/** Longer than the fleet's LEASE_TTL_MS (5 s), shorter than the broker's heartbeat timeout. */
const FREEZE_MS = 8_000;

export const SCENARIOS: Scenario[] = [
  killService('ingress'),
  killService('dispatcher'),
  killService('sender'),
  killService('dlq-replayer'),
  {
    name: 'freeze sender 8 s',
    does: `SIGSTOP of one sender replica for ${s(FREEZE_MS)} (longer than LEASE_TTL_MS, as a long GC pause or a CPU-throttled container would), then SIGCONT: its leases and membership run out while it holds deliveries, and the other sender takes its shards.`,
    async inject({ fleet }) {
      const i = fleet.find('sender');
      const seen = () => fleet.procs[i].output().split('shard lease ran out').length - 1;
      const before = seen();
      const r = await fleet.freeze(i, FREEZE_MS);
      // Its first renewal after the resume finds the leases gone (one line per shard).
      await waitFor(() => seen() > before, { timeoutMs: 10_000, intervalMs: 100, what: 'the frozen sender to notice' }).catch(() => {});
      await sleep(1_000); // the rest of that renewal round (every lease is renewed at once) logs meanwhile
      const lost = seen() - before;
      return { faultStart: r.frozenAt, faultEnd: r.resumedAt, notes: [`${r.replicaId} found ${lost} shard lease(s) gone when it ran again`] };
    },
  },
  {
    name: 'RabbitMQ restart',
    does: '`rabbitmqctl stop_app` then `start_app` on the (single, private) broker node: every connection drops, queues stay on disk.',
    async inject({ infra, fleet }) {
      const node = infra.nodes[0];
      const before = await node.hashRings(fleet.vhost).catch(() => null);
      const issued = Date.now();
      const lost = untilIngress(fleet, (r) => r.broker === false, 120_000);
      await node.stopApp();
      const stopped = Date.now();
      // The fault ends when the broker listens again (await_startup, on a busy machine, answers later).
      const listening = waitFor(() => portOpen(node.ports.amqp), { timeoutMs: 120_000, intervalMs: 100, what: 'AMQP port' }).then(() => Date.now());
      await node.startApp();
      const faultEnd = await listening;
      const l = await lost;
      const notes = [`stop_app took ${s(stopped - issued)}, the ingress lost the broker ${l === null ? 'never' : `${s(l - issued)} after it was issued`}`];
      notes.push(`the broker listened again ${s(faultEnd - stopped)} after start_app`);
      // The node rebuilt its consistent-hash rings from the bindings as it started (docs/RELIABILITY.md).
      const after = before ? await node.hashRings(fleet.vhost).catch(() => null) : null;
      const ringMoved = before && after ? ringChanges(before, after) : null;
      notes.push(ringNote(ringMoved, 'the node'));
      // The outage begins when the broker stops serving (stop_app first drains for a while).
      return { faultStart: l ?? issued, faultEnd, notes, ringMoved };
    },
  },
  {
    name: 'Redis down 10 s',
    does: '`redis-cli shutdown nosave` on the private Redis, started again 10 s later, empty (no persistence): leases, membership, sent-ids, idempotency keys, holds and rate-limit state are gone.',
    async inject({ infra }) {
      const faultStart = Date.now();
      await infra.redis.shutdown();
      await sleep(10_000);
      await infra.redis.start();
      return { faultStart, faultEnd: Date.now(), notes: [] };
    },
  },
  {
    name: 'Redis frozen 10 s',
    does: '`SIGSTOP` of the private Redis for 10 s, then `SIGCONT`: connections stay open and every command waits with no answer (a hung node, a network partition without resets). Nothing is lost from Redis.',
    async inject({ infra }) {
      const faultStart = Date.now();
      await infra.redis.signal('SIGSTOP');
      try {
        await sleep(10_000);
      } finally {
        await infra.redis.signal('SIGCONT');
      }
      return { faultStart, faultEnd: Date.now(), notes: [] };
    },
  },
  {
    name: 'dispatch bindings deleted 10 s',
    does:
      'Every shard binding of the `dispatch` exchange is deleted (as by hand in the management UI), and put back 10 s later with the same weights: meanwhile no publish of the ingress reaches a queue.',
    async inject({ infra, fleet }) {
      const { names, options } = topologyFromConfig(fleet.cfg);
      const exchange = names.laneExchange('dispatch');
      const shards = Array.from({ length: options.shards }, (_, i) => names.shardQueue('dispatch', i));
      const conn = await amqplib.connect(fleet.amqpUrlOf(infra.nodes[0]));
      try {
        const ch = await conn.createChannel();
        const faultStart = Date.now();
        for (const q of shards) await ch.unbindQueue(q, exchange, '1');
        await sleep(10_000);
        // The dispatchers drained the shards meanwhile (nothing new came in), so the ring the exchange
        // deals anew on rebinding cannot put a user's next message beside an older one elsewhere.
        let left = 0;
        for (const q of shards) left += (await ch.checkQueue(q)).messageCount;
        for (const q of shards) await ch.bindQueue(q, exchange, '1');
        const faultEnd = Date.now();
        await ch.close();
        return { faultStart, faultEnd, notes: [`${left} message(s) were still in the dispatch shards when the bindings came back`] };
      } finally {
        await conn.close().catch(() => undefined);
      }
    },
  },
  {
    name: 'simulator down 30 s',
    does: "The provider simulator's `down` fault for 30 s: every send gets its connection reset, no answer.",
    async inject({ fleet }) {
      const faultStart = Date.now();
      fleet.sim.setFaults({ down: true });
      await sleep(30_000);
      fleet.sim.setFaults({ down: false });
      return { faultStart, faultEnd: Date.now(), notes: [] };
    },
  },
  {
    name: 'memory alarm 10 s',
    does: '`rabbitmqctl set_vm_memory_high_watermark 0.000001` on the broker (a memory alarm: publishers blocked), back to 0.4 after 10 s.',
    async inject({ infra, fleet }) {
      const node = infra.nodes[0];
      const issued = Date.now();
      await node.setMemoryWatermark(0.000001);
      // The alarm's window is what the fleet saw: from the ingress's "blocked" to its "unblocked".
      const faultStart = (await untilIngress(fleet, (r) => r.blocked === true, 15_000)) ?? Date.now();
      await sleep(Math.max(0, faultStart + 10_000 - Date.now()));
      const clearing = Date.now();
      const unblocked = untilIngress(fleet, (r) => r.blocked === false, 60_000);
      await node.setMemoryWatermark(0.4);
      const faultEnd = (await unblocked) ?? Date.now();
      const notes = [`the ingress saw the alarm ${s(faultStart - issued)} after the command and its end ${s(faultEnd - clearing)} after the command`];
      return { faultStart, faultEnd, notes };
    },
  },
  {
    name: 'cluster: kill -9 shard leader',
    cluster: true,
    does:
      'On a 3-node cluster (AMQP_URL lists all three), `kill -9` of the beam process of the node that leads most shard queues (management API `leader`); the node is started again at once, as a StatefulSet would.',
    async inject({ fleet, infra, log }) {
      const { node, leads, of } = await shardLeader(fleet, infra.nodes);
      log(`    ${node.node} leads ${leads} of ${of} shard queues: kill -9`);
      const before = await node.hashRings(fleet.vhost).catch(() => null);
      await node.kill9();
      const killedAt = Date.now();
      await node.start();
      const after = await shardLeader(fleet, infra.nodes).catch(() => null);
      const notes = [`${node.node} led ${leads}/${of} shard queues`, `node back after ${s(Date.now() - killedAt)}`];
      if (after) notes.push(`then ${after.node.node} led ${after.leads}/${after.of}`);
      // Unlike a single node, the restarted node copies the rings from the nodes that kept running
      // (measured: docs/RELIABILITY.md finding 8); every node's ring is compared with the one before.
      const rings = before ? await Promise.all(infra.nodes.map((n) => n.hashRings(fleet.vhost).catch(() => null))) : [];
      const moved = rings.map((r) => (before && r ? ringChanges(before, r) : null));
      const ringMoved = moved.includes(null) || moved.length === 0 ? null : moved.reduce((a, b) => (b!.moved > a!.moved ? b : a));
      notes.push(ringNote(ringMoved, 'the cluster'));
      return { faultStart: killedAt, faultEnd: killedAt, notes, ringMoved };
    },
  },
];
