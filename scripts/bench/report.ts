/**
 * The run's figures: one JSON object (the machine-readable last line) and a table for people, with
 * the targets of this machine next to the figures that have one.
 */
import Table from 'cli-table3';
import type { BareChainResult } from './bare-chain.js';
import type { BurstResult } from './burst.js';
import type { LatencyResult, PipelineResult } from './pipeline.js';
import type { HopResult } from './raw-hop.js';
import type { UrgentResult } from './urgent.js';
import type { HopLatency } from './hop-latency.js';
import { walWords } from './broker-wal.js';

export interface Results {
  mode: 'full' | 'quick';
  raw: HopResult;
  /** The raw hop through the shard topology (exchange, shard queues, headers): topology-hop.ts. */
  topology: HopResult;
  /** The topology hop paced at the pipeline's rate (full and quick runs). */
  pacedTopology?: HopResult;
  http: HopResult;
  bullmq: HopResult;
  /** The limit's legs as the fleet's processes, nothing else, and their latency (bare-chain.ts; full and quick runs). */
  bareChain?: BareChainResult;
  hopLatency: HopLatency;
  pipeline: PipelineResult;
  /** The pipeline with one message per request. */
  singles: PipelineResult;
  latency: LatencyResult;
  /** Latency at half the single-POST rate, one message per request. */
  singlesLatency: LatencyResult;
  urgent: UrgentResult;
  /** The same with WORKER_LANES=urgent replicas beside WORKER_LANES=ordered ones. */
  urgentDedicated: UrgentResult;
  burst: BurstResult;
  seconds: number;
}

/** The service processes whose RSS the burst figure is about (the simulator is the bench's provider, not ours). */
const FLEET = ['ingress', 'dispatcher', 'sender'];

/** 1 / (2 broker hops + 1 HTTP hop): what one message costs the pipeline at the least. */
export function limitPerSecond(rawPerSecond: number, httpPerSecond: number): number {
  return 1 / (2 / rawPerSecond + 1 / httpPerSecond);
}

export function figures(r: Results): Record<string, number | string> {
  const limit = limitPerSecond(r.raw.perSecond, r.http.perSecond);
  const topologyLimit = limitPerSecond(r.topology.perSecond, r.http.perSecond);
  const maxRss = Math.max(...FLEET.map((s) => r.burst.maxRssMb[s] ?? 0));
  return {
    mode: r.mode,
    raw_hop_per_s: Math.round(r.raw.perSecond),
    http_hop_per_s: Math.round(r.http.perSecond),
    limit_per_s: Math.round(limit),
    bullmq_hop_per_s: Math.round(r.bullmq.perSecond),
    pipeline_per_s: Math.round(r.pipeline.perSecond),
    ratio_vs_limit: round(r.pipeline.perSecond / limit, 3),
    topology_hop_per_s: Math.round(r.topology.perSecond),
    topology_limit_per_s: Math.round(topologyLimit),
    ratio_vs_topology_limit: round(r.pipeline.perSecond / topologyLimit, 3),
    p50_ms: Math.round(r.latency.p50),
    p99_ms: Math.round(r.latency.p99),
    urgent_p99_ms: Math.round(r.urgent.p99),
    urgent_dedicated_p99_ms: Math.round(r.urgentDedicated.p99),
    urgent_startup_max_ms: Math.round(r.urgent.startup.max),
    burst_accept_per_s: Math.round(r.burst.acceptPerSecond),
    burst_max_rss_mb: round(maxRss, 1),
    lost: r.burst.byId.lost,
    // Broker WAL flushes (broker-wal.ts) in the p99_ms, urgent_p99_ms and dedicated windows; -1: not watched.
    wal_flushes: [r.latency.wal, r.urgent.wal, r.urgentDedicated.wal].map((w) => (w ? w.flushes : -1)).join('/'),
    // The broker's CPU per message for one topology hop, saturated (what the limit assumes) and paced
    // at the pipeline's rate (what the pipeline gets); -1 where the broker's pid is unknown.
    broker_cpu_ms_per_hop: brokerMs(r.topology),
    broker_cpu_ms_per_hop_paced: r.pacedTopology ? brokerMs(r.pacedTopology) : -1,
    ...(r.bareChain ? chainFigures(r.bareChain, r.pipeline.perSecond, limit) : {}),
  };
}

/**
 * The bare chain's rate, what it reaches of the limit (the legs composed on the shared cores), and
 * the pipeline against it (what the services' own logic leaves of the legs).
 */
export function chainFigures(chain: BareChainResult, pipelinePerSecond: number, limit: number): Record<string, number> {
  return {
    bare_chain_per_s: Math.round(chain.perSecond),
    ratio_bare_chain_vs_limit: round(chain.perSecond / limit, 3),
    ratio_vs_bare_chain: round(pipelinePerSecond / chain.perSecond, 3),
    // The chain's p99 at the pipeline's latency load (-1: not measured): the legs' own share of p99_ms.
    bare_chain_p99_ms: chain.latency ? Math.round(chain.latency.p99) : -1,
  };
}

function brokerMs(h: HopResult): number {
  return h.cpu?.byProcess.rabbitmq ?? -1;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** "ingress 0.41 + rabbitmq 0.30 + … = 1.2 ms" (the load generator, `bench`, shown apart). */
function cpuLine(cpu: { byProcess: Record<string, number>; total: number } | undefined): string {
  if (!cpu) return '';
  const parts = Object.entries(cpu.byProcess).filter(([k]) => k !== 'bench').map(([k, v]) => `${k} ${v.toFixed(2)}`);
  const bench = cpu.byProcess.bench;
  return `CPU ms/msg: ${parts.join(' + ')}${parts.length ? ' = ' : ''}${cpu.total.toFixed(2)}${bench !== undefined ? ` (load generator ${bench.toFixed(2)})` : ''}`;
}

/** "; at 650/s in batches of 50 (p99_ms's load), publish → answer p50 … p99 … ms" when measured. */
function chainLatency(c: BareChainResult): string {
  const l = c.latency;
  return l ? `; at ${n(l.rate)}/s in batches of ${l.batch} (the p99_ms load), ${n(l.count)} msgs, publish → answer p50 ${n(l.p50)}, p99 ${n(l.p99)}, max ${n(l.max)} ms` : '';
}

/** The urgent messages of the workers' first seconds, measured apart (UrgentResult.startup). */
function startup(u: UrgentResult): string {
  const s = u.startup;
  return `; before that, in the workers' first seconds on the backlog: ${s.count} urgent msgs, p50 ${n(s.p50)}, max ${n(s.max)} ms (not in the p99)`;
}

/**
 * The urgent messages' two legs (status history): accept → dispatched, dispatched → provider; and
 * how long the shared replicas held their ordered lanes for them, when they did.
 */
function legs(u: UrgentResult): string {
  const [d50, d99] = u.legs.dispatch;
  const [s50, s99] = u.legs.send;
  const held = u.held.dispatch + u.held.send > 0
    ? `; ordered lanes held for them ${u.held.dispatch.toFixed(1)} s (dispatcher) and ${u.held.send.toFixed(1)} s (sender) of ${(u.windowMs / 1000).toFixed(1)} s`
    : '';
  return `; p50 / p99 of accept → dispatched ${n(d50)} / ${n(d99)} ms, dispatched → provider ${n(s50)} / ${n(s99)} ms${held}`;
}

/** "; 1,234 sent to a retry tier by the workers" when any were (with "(send/throttled 1,200, …)" when known). */
function retried(count: number, by?: Record<string, number>): string {
  const parts = Object.entries(by ?? {}).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${n(v)}`);
  return count > 0 ? `; ${n(count)} sent to a retry tier by the workers meanwhile${parts.length ? ` (${parts.join(', ')})` : ''}` : '';
}

function shape(p: PipelineResult): string {
  return p.shape.batchSize === 1 ? `${p.shape.concurrency} single POSTs in flight` : `${p.shape.concurrency} batches of ${p.shape.batchSize} in flight`;
}

function trials(h: HopResult): string {
  return h.trials && h.trials.length > 1 ? `; median of ${h.trials.map((x) => n(x)).join(' / ')}` : '';
}

const n = (x: number) => Math.round(x).toLocaleString('en-US');
const verdict = (ok: boolean) => (ok ? 'ok' : 'MISSED');

export function table(r: Results): string {
  const f = figures(r);
  const t = new Table({ head: ['figure', 'value', 'target', 'how it was measured'], style: { head: [], border: [] }, wordWrap: true, colWidths: [23, 14, 14, 67] });
  const b = r.burst;
  const rss = Object.entries(b.maxRssMb).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ');
  t.push(
    ['raw_hop_per_s', n(r.raw.perSecond), '', `amqplib confirm-publish → quorum queue → consume+ack, ${n(r.raw.count)} msgs in ${r.raw.seconds.toFixed(1)} s${trials(r.raw)}`],
    ['http_hop_per_s', n(r.http.perSecond), '', `undici keep-alive → bare node:http 200, ${n(r.http.count)} requests in ${r.http.seconds.toFixed(1)} s${trials(r.http)}`],
    ['limit_per_s', n(f.limit_per_s as number), '', '1 / (2 / raw + 1 / http)'],
    [
      'topology_hop_per_s',
      n(r.topology.perSecond),
      '',
      `the raw hop through a stage's consistent-hash exchange into its ${r.topology.queues ?? '?'} quorum shard queues (their policy, the lanes' headers, one consumer per shard at the workers' prefetch), bare amqplib, ${n(r.topology.count)} msgs in ${r.topology.seconds.toFixed(1)} s${trials(r.topology)}; ${cpuLine(r.topology.cpu)}`,
    ],
    ...(r.pacedTopology
      ? [
          [
            'topology hop, paced',
            '',
            '',
            `the same hop at the pipeline's rate (${n(r.pacedTopology.rate ?? 0)}/s, batches of ${r.pipeline.shape.batchSize}), ${n(r.pacedTopology.count)} msgs: ${cpuLine(r.pacedTopology.cpu)}; the broker's CPU per message per hop ${brokerMs(r.pacedTopology).toFixed(3)} ms against ${brokerMs(r.topology).toFixed(3)} saturated`,
          ],
        ]
      : []),
    ['topology_limit_per_s', n(f.topology_limit_per_s as number), '', `1 / (2 / topology hop + 1 / http): the limit with the lanes' topology; pipeline / it = ${f.ratio_vs_topology_limit} (what the services' own work leaves of it)`],
    ['bullmq_hop_per_s', n(r.bullmq.perSecond), '', `BullMQ add → worker → completed, ${n(r.bullmq.count)} jobs in ${r.bullmq.seconds.toFixed(1)} s${trials(r.bullmq)}`],
    ['pipeline_per_s', n(r.pipeline.perSecond), '', `${n(r.pipeline.count)} msgs to ${n(r.pipeline.shape.users)} users, ${shape(r.pipeline)}; first request → last delivery ${r.pipeline.seconds.toFixed(1)} s (accepted at ${n(r.pipeline.acceptPerSecond)}/s)${retried(r.pipeline.retried)}`],
    ['pipeline CPU', '', '', cpuLine(r.pipeline.cpu)],
    ...(r.bareChain
      ? [
          [
            'bare_chain_per_s',
            n(r.bareChain.perSecond),
            '',
            `the limit's legs as the fleet runs them, nothing else: the bench publishes to the dispatch lane (${n(r.bareChain.count)} msgs, the pipeline's ${r.pipeline.shape.concurrency * r.pipeline.shape.batchSize} in flight), a relay process moves them to the send lane, a forward process posts each to the bare HTTP server; ${r.bareChain.seconds.toFixed(1)} s; ${cpuLine(r.bareChain.cpu)}; bare chain / limit = ${f.ratio_bare_chain_vs_limit}, pipeline / bare chain = ${f.ratio_vs_bare_chain} (what the services' own logic leaves of the legs)${chainLatency(r.bareChain)}`,
          ],
        ]
      : []),
    ['single POSTs', n(r.singles.perSecond), '', `the same, ${shape(r.singles)}: ${n(r.singles.count)} msgs in ${r.singles.seconds.toFixed(1)} s${retried(r.singles.retried)}; ${cpuLine(r.singles.cpu)}`],
    ['hop CPU', '', '', `raw ${cpuLine(r.raw.cpu)}; http ${cpuLine(r.http.cpu)}; bullmq ${cpuLine(r.bullmq.cpu)}`],
    [
      'hop latency',
      '',
      '',
      `one raw hop at a low rate (${n(r.hopLatency.count)} msgs, one per ${r.hopLatency.intervalMs} ms), p50 / p99: ${r.hopLatency.nagle.join(' / ')} ms with amqplib's default socket (Nagle on), ${r.hopLatency.noDelay.join(' / ')} ms with noDelay (the fleet's)`,
    ],
    ['ratio_vs_limit', String(f.ratio_vs_limit), '≥ 0.75', verdict((f.ratio_vs_limit as number) >= 0.75)],
    ['p50_ms', n(r.latency.p50), '', `accept → provider, open loop at ${n(r.latency.ratePerSecond)}/s (${r.latency.batchSize === 1 ? 'single POSTs' : `batches of ${r.latency.batchSize}`}), ${n(r.latency.count)} msgs${retried(r.latency.retried)}`],
    ['p99_ms', n(r.latency.p99), '≤ 50', `${verdict(r.latency.p99 <= 50)}; max ${n(r.latency.max)} ms${walWords(r.latency.wal)}`],
    [
      'single POSTs p99',
      n(r.singlesLatency.p99),
      '',
      `the same at half the single-POST rate: open loop at ${n(r.singlesLatency.ratePerSecond)}/s, ${n(r.singlesLatency.count)} msgs; p50 ${n(r.singlesLatency.p50)}, max ${n(r.singlesLatency.max)} ms${retried(r.singlesLatency.retried)}`,
    ],
    ['urgent_p99_ms', n(r.urgent.p99), '≤ 100', `${verdict(r.urgent.p99 <= 100)}; ${r.urgent.count} urgent msgs while ${n(r.urgent.backlogAtStart)} → ${n(r.urgent.backlogAtEnd)} normal ones waited (backlog ${n(r.urgent.backlog)}); p50 ${n(r.urgent.p50)}, max ${n(r.urgent.max)} ms${legs(r.urgent)}${retried(r.urgent.retried)}${startup(r.urgent)}${walWords(r.urgent.wal)}`],
    ['urgent, dedicated', n(r.urgentDedicated.p99), '', `p99 with one WORKER_LANES=urgent dispatcher and sender beside WORKER_LANES=ordered ones; ${r.urgentDedicated.count} urgent msgs while ${n(r.urgentDedicated.backlogAtStart)} → ${n(r.urgentDedicated.backlogAtEnd)} normal ones waited; p50 ${n(r.urgentDedicated.p50)}, max ${n(r.urgentDedicated.max)} ms${legs(r.urgentDedicated)}${retried(r.urgentDedicated.retried)}${startup(r.urgentDedicated)}${walWords(r.urgentDedicated.wal)}`],
    [
      'burst_accept_per_s',
      n(b.acceptPerSecond),
      '',
      `${n(b.accepted)} of ${n(b.offered)} accepted in ${b.acceptSeconds.toFixed(1)} s (batches of 500, ${n(b.retried503)} items answered 503 and sent again); meanwhile the sender (limit 1,000/s) delivered ${n(b.deliveredPerSecondDuringAccept)}/s${retried(b.retried, b.retriedBy)}`,
    ],
    ['burst_max_rss_mb', String(f.burst_max_rss_mb), '≤ 300', `${verdict((f.burst_max_rss_mb as number) <= 300)}; max VmRSS MB: ${rss}; RabbitMQ node up to ${n(b.brokerMaxMemMb)} MB`],
    [
      'lost',
      String(b.byId.lost),
      '0',
      `${verdict(b.byId.lost === 0)}; by count: ${n(b.accepted)} accepted − ${n(b.delivered)} delivered − ${n(b.queued)} queued (${n(b.inRetryTiers)} in retry tiers) − ${n(b.deadLettered)} DLQ = ${n(b.lostByCount)}${b.settled ? '' : ' (queue depths did not settle)'}; ` +
        `by id: ${n(b.byId.delivered)} delivered + ${n(b.byId.queued)} queued + ${n(b.byId.deadLettered)} DLQ + ${n(b.byId.lost)} lost; ` +
        `copies in the broker ${n(b.byId.brokerDuplicates)}, 503'd but queued ${n(b.byId.unacknowledgedButQueued)}, duplicates at the provider ${b.duplicates}`,
    ],
  );
  return t.toString();
}
