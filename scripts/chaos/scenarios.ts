/**
 * The chaos scenarios: each injects one fault into a loaded fleet and undoes it (or lets the
 * "platform" restart what died), returning the fault's window for the recovery measurement.
 */
import amqplib from 'amqplib';
import { Management } from '../../shared/amqp/management.js';
import { topologyFromConfig } from '../../shared/amqp/runtime.js';
import type { ChaosFleet, FleetShape, Infra } from './fleet.js';
import type { ScheduledShare } from './load.js';
import { portOpen } from '../lib/ports.js';
import { sleep, waitFor } from '../lib/wait.js';
import type { ServiceName } from '../lib/processes.js';
import type { RabbitNode } from '../lib/private-rabbit.js';
import { STAGES } from '../../shared/amqp/topology/names.js';
import { strictReplayOrder } from './strict-replay.js';
import { sentinelKillPrimary } from './sentinel-failover.js';

export interface FaultWindow {
  /** When the fault began and ended (ms epoch). An instantaneous fault (SIGKILL) ends as it begins. */
  faultStart: number;
  faultEnd: number;
  notes: string[];
  /** Shard routes (shard key → queue) that point at another queue after the fault (null: not read). */
  routesMoved?: RoutesMoved | null;
}

export interface RoutesMoved {
  moved: number;
  routes: number;
}

/**
 * How the broker routes each shard key of the fleet's shard exchanges (`<exchange>/<key>` → queue),
 * from the bindings as `node` lists them (management API). The publisher picks the shard
 * (shared/amqp/topology/shard.ts); these bindings are all that the broker adds to it.
 */
export async function shardRoutes(fleet: ChaosFleet, node: RabbitNode): Promise<Map<string, string>> {
  const { names } = topologyFromConfig(fleet.cfg);
  const m = new Management(node.mgmtUrl);
  const out = new Map<string, string>();
  for (const stage of STAGES) {
    const x = names.laneExchange(stage);
    const bindings = await m.call<Array<{ destination: string; routing_key: string }>>(
      'GET',
      `/api/exchanges/${Management.vhostPath(fleet.vhost)}/${encodeURIComponent(x)}/bindings/source`,
    );
    for (const b of bindings) out.set(`${x}/${b.routing_key}`, b.destination);
  }
  return out;
}

/** Routes whose queue differs (or that are gone) between two readings of shardRoutes. */
export function routeChanges(before: Map<string, string>, after: Map<string, string>): RoutesMoved {
  let moved = 0;
  for (const [key, q] of before) if (after.get(key) !== q) moved++;
  return { moved, routes: before.size };
}

/** Reads the routes on every node that answers and keeps the worst comparison with `before`. */
async function routesAfter(fleet: ChaosFleet, nodes: RabbitNode[], before: Map<string, string> | null): Promise<RoutesMoved | null> {
  if (!before) return null;
  const read = await Promise.all(nodes.map((n) => shardRoutes(fleet, n).catch(() => null)));
  const moved = read.filter((r): r is Map<string, string> => r !== null).map((r) => routeChanges(before, r));
  return moved.length === 0 ? null : moved.reduce((a, b) => (b.moved > a.moved ? b : a));
}

function routesNote(r: RoutesMoved | null): string {
  if (r === null) return 'shard routes not read';
  if (r.moved === 0) return `no user moved: all ${r.routes} shard routes unchanged`;
  return `${r.moved} of ${r.routes} shard routes point at another queue`;
}

/** Shard queues of each stage holding messages (ready or unacked), read on `node`. */
async function busyShards(fleet: ChaosFleet, node: RabbitNode): Promise<{ sendBusy: number; note: string }> {
  const { names } = topologyFromConfig(fleet.cfg);
  const depth = new Map((await new Management(node.mgmtUrl).queues(fleet.vhost)).map((q) => [q.name, q.messages]));
  let total = 0;
  const busy = STAGES.map((stage) => {
    const counts = Array.from({ length: fleet.cfg.shards }, (_, i) => depth.get(names.shardQueue(stage, i)) ?? 0);
    total += counts.reduce((x, y) => x + y, 0);
    return counts.filter((c) => c > 0).length;
  });
  const parts = STAGES.map((stage, i) => `${stage} ${busy[i]}/${fleet.cfg.shards}`);
  return { sendBusy: busy[STAGES.indexOf('send')], note: `shards holding messages when it began: ${parts.join(', ')} (${total} messages)` };
}

/**
 * Slows the provider to `latencyMs` per send so that every send shard holds messages (in flight or
 * waiting) when the fault comes: the case where a user moved to another shard would be misordered.
 * The caller sets the latency back to 0. @returns the busy-shard note, once every send shard holds
 * messages or after 6 s.
 */
async function fillShards(fleet: ChaosFleet, node: RabbitNode, latencyMs = 1000): Promise<string> {
  fleet.sim.setFaults({ latencyMs });
  const full = async () => {
    const b = await busyShards(fleet, node).catch(() => null);
    return b && b.sendBusy >= fleet.cfg.shards ? b : null;
  };
  const b =
    (await waitFor(full, { timeoutMs: 6_000, intervalMs: 250, what: 'every send shard to hold messages' }).catch(() => null)) ??
    (await busyShards(fleet, node).catch(() => null));
  return b?.note ?? 'shard depths not read';
}

export interface ScenarioContext {
  fleet: ChaosFleet;
  infra: Infra;
  log: (line: string) => void;
}

export interface Scenario {
  name: string;
  /** Needs the 3-node cluster. */
  cluster?: boolean;
  /** Runs the fleet on the private Redis Sentinel set (Infra.sentinel) instead of the single Redis. */
  sentinel?: boolean;
  /** Load options beyond the run's: a share of scheduled sends. */
  load?: { scheduled?: ScheduledShare };
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
    const r = await fetch(`${fleet.ingressUrl}/readyz`).then(
      (x) => x.json() as Promise<{ broker?: boolean; blocked?: boolean }>,
      () => null,
    );
    if (r && match(r)) return Date.now();
    await sleep(100);
  }
  return null;
}

function killService(service: ServiceName): Scenario {
  return {
    name: `kill -9 ${service}`,
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

/** Whether every shard queue of the fleet has all its members online (management API `members`, `online`). */
async function allMembersOnline(fleet: ChaosFleet, via: RabbitNode): Promise<boolean> {
  const { names } = topologyFromConfig(fleet.cfg);
  const shards = new Set(STAGES.flatMap((stage) => Array.from({ length: fleet.cfg.shards }, (_, i) => names.shardQueue(stage, i))));
  const queues = await new Management(via.mgmtUrl)
    .call<Array<{ name: string; members?: string[]; online?: string[] }>>('GET', `/api/queues/${Management.vhostPath(fleet.vhost)}?columns=name,members,online`)
    .catch(() => null);
  if (!queues) return false;
  const mine = queues.filter((q) => shards.has(q.name));
  return mine.length === shards.size && mine.every((q) => (q.members?.length ?? 0) > 0 && q.online?.length === q.members?.length);
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
    async inject({ infra, fleet }) {
      const node = infra.nodes[0];
      const before = await shardRoutes(fleet, node).catch(() => null);
      const busy = await fillShards(fleet, node);
      const issued = Date.now();
      const lost = untilIngress(fleet, (r) => r.broker === false, 120_000);
      await node.stopApp();
      const stopped = Date.now();
      // The fault ends when the broker listens again (await_startup, on a busy machine, answers later).
      const listening = waitFor(() => portOpen(node.ports.amqp), { timeoutMs: 120_000, intervalMs: 100, what: 'AMQP port' }).then(() => Date.now());
      await node.startApp();
      const faultEnd = await listening;
      fleet.sim.setFaults({ latencyMs: 0 });
      const l = await lost;
      const notes = [
        busy,
        `stop_app took ${s(stopped - issued)}, the ingress lost the broker ${l === null ? 'never' : `${s(l - issued)} after it was issued`}`,
      ];
      notes.push(`the broker listened again ${s(faultEnd - stopped)} after start_app`);
      const routesMoved = await routesAfter(fleet, [node], before);
      notes.push(routesNote(routesMoved));
      // The outage begins when the broker stops serving (stop_app first drains for a while).
      return { faultStart: l ?? issued, faultEnd, notes, routesMoved };
    },
  },
  {
    name: 'Redis down 10 s',
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
    name: 'send bindings deleted 10 s',
    async inject({ infra, fleet }) {
      const topology = topologyFromConfig(fleet.cfg);
      const shards = topology.bindings.filter((b) => b.source === topology.names.laneExchange('send'));
      const conn = await amqplib.connect(fleet.amqpUrlOf(infra.nodes[0]));
      try {
        const ch = await conn.createChannel();
        const faultStart = Date.now();
        for (const b of shards) await ch.unbindQueue(b.destination, b.source, b.routingKey);
        await sleep(10_000);
        let left = 0;
        for (const b of shards) left += (await ch.checkQueue(b.destination)).messageCount;
        for (const b of shards) await ch.bindQueue(b.destination, b.source, b.routingKey);
        const faultEnd = Date.now();
        await ch.close();
        return { faultStart, faultEnd, notes: [`${left} message(s) were still in the send shards when the bindings came back`] };
      } finally {
        await conn.close().catch(() => undefined);
      }
    },
  },
  {
    name: 'simulator down 30 s',
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
    async inject({ fleet, infra, log }) {
      const { node, leads, of } = await shardLeader(fleet, infra.nodes);
      log(`    ${node.node} leads ${leads} of ${of} shard queues: kill -9`);
      const before = await shardRoutes(fleet, node).catch(() => null);
      await node.kill9();
      const killedAt = Date.now();
      await node.start();
      const after = await shardLeader(fleet, infra.nodes).catch(() => null);
      const notes = [`${node.node} led ${leads}/${of} shard queues`, `node back after ${s(Date.now() - killedAt)}`];
      if (after) notes.push(`then ${after.node.node} led ${after.leads}/${after.of}`);
      const routesMoved = await routesAfter(fleet, infra.nodes, before);
      notes.push(routesNote(routesMoved));
      return { faultStart: killedAt, faultEnd: killedAt, notes, routesMoved };
    },
  },
  {
    name: 'cluster: rolling restart',
    cluster: true,
    async inject({ fleet, infra, log }) {
      const via = infra.nodes[infra.nodes.length - 1];
      const before = await shardRoutes(fleet, via).catch(() => null);
      const busy = await fillShards(fleet, via);
      const faultStart = Date.now();
      const notes = [busy];
      for (const node of infra.nodes) {
        const t0 = Date.now();
        await node.stop();
        const down = Date.now();
        await node.start();
        const up = Date.now();
        const other = infra.nodes.find((n) => n !== node)!;
        const synced = await waitFor(() => allMembersOnline(fleet, other), {
          timeoutMs: 120_000,
          intervalMs: 500,
          what: 'every shard queue to have all members online',
        })
          .then(() => Date.now())
          .catch(() => null);
        const step = `${node.name}: stop ${s(down - t0)}, start ${s(up - down)}, members online ${synced === null ? 'not within 120 s' : `after ${s(synced - up)}`}`;
        log(`    ${step}`);
        notes.push(step);
      }
      const faultEnd = Date.now();
      fleet.sim.setFaults({ latencyMs: 0 });
      const routesMoved = await routesAfter(fleet, infra.nodes, before);
      notes.push(routesNote(routesMoved));
      return { faultStart, faultEnd, notes, routesMoved };
    },
  },
  {
    name: 'cluster: whole-cluster stop and start',
    cluster: true,
    async inject({ fleet, infra }) {
      const via = infra.nodes[infra.nodes.length - 1];
      const before = await shardRoutes(fleet, via).catch(() => null);
      const busy = await fillShards(fleet, via);
      const faultStart = Date.now();
      for (const node of infra.nodes) await node.stop();
      const down = Date.now();
      // Nodes wait for their peers' tables as they boot, so they are started together.
      await Promise.all(infra.nodes.map((n) => n.start()));
      const up = Date.now();
      const synced = await waitFor(() => allMembersOnline(fleet, via), {
        timeoutMs: 120_000,
        intervalMs: 500,
        what: 'every shard queue to have all members online',
      })
        .then(() => Date.now())
        .catch(() => null);
      fleet.sim.setFaults({ latencyMs: 0 });
      const notes = [
        busy,
        `stopping the three nodes took ${s(down - faultStart)}, starting them ${s(up - down)}; shard queues with all members online ${synced === null ? 'not within 120 s' : `${s(synced - up)} later`}`,
      ];
      const routesMoved = await routesAfter(fleet, infra.nodes, before);
      notes.push(routesNote(routesMoved));
      return { faultStart, faultEnd: up, notes, routesMoved };
    },
  },
  strictReplayOrder,
  sentinelKillPrimary,
];
