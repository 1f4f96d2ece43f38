/**
 * The run's figures: one JSON object (the machine-readable last line) and a table for people, with
 * each target's verdict next to the figure it is about.
 */
import Table from 'cli-table3';
import type { BurstResult } from './burst.js';
import type { InboundResult } from './inbound.js';
import type { PeerResult } from './peers/measure.js';
import type { LatencyResult, PipelineResult } from './pipeline.js';
import type { HopResult } from './raw-hop.js';
import type { UrgentResult } from './urgent.js';
import { walWords } from './broker-wal.js';

export interface Results {
  mode: 'full' | 'quick';
  raw: HopResult;
  http: HopResult;
  peerAmqp: PeerResult;
  peerBullmq: PeerResult;
  pipeline: PipelineResult;
  latency: LatencyResult;
  inbound: InboundResult;
  urgent: UrgentResult;
  burst: BurstResult;
  /** MiB by service, the production overlay's container limits the services ran under; or why they ran without. */
  memoryLimits: Record<string, number> | string;
  seconds: number;
}

/** The fleet's limits, MiB by service. */
function memoryLimitsOf(m: Record<string, number>): Record<string, number> {
  return Object.fromEntries(FLEET.map((s) => [s, m[s]]));
}

/** "memory limits ingress 512, dispatcher 768, sender 768 MiB", or "no memory limit (why)". */
export function memoryLimitWords(m: Results['memoryLimits']): string {
  if (typeof m === 'string') return `no memory limit (${m})`;
  return `memory limits ${FLEET.map((s) => `${s} ${m[s] ?? '-'}`).join(', ')} MiB`;
}

type Cpu = { byProcess: Record<string, number>; total: number };

/** The service processes whose RSS the burst figure is about. */
const FLEET = ['ingress', 'dispatcher', 'sender'];

/** 1 / (1 broker hop + 1 HTTP hop): what one outbound message costs at the least. */
export function limitPerSecond(rawPerSecond: number, httpPerSecond: number): number {
  return 1 / (1 / rawPerSecond + 1 / httpPerSecond);
}

/** Each target: whether this run met it. */
export function targets(r: Results): Record<string, boolean> {
  const fasterAccept = Math.max(r.peerAmqp.burst.acceptPerSecond, r.peerBullmq.burst.acceptPerSecond);
  return {
    pipeline_vs_peer_bullmq: r.pipeline.perSecond >= r.peerBullmq.perSecond,
    pipeline_vs_peer_amqp: r.pipeline.perSecond >= 0.75 * r.peerAmqp.perSecond,
    burst_accept: r.burst.acceptPerSecond >= 0.75 * fasterAccept,
    burst_max_rss: maxRss(r) <= 300,
    lost: r.burst.byId.lost === 0,
    p99: r.latency.p99 <= 50,
    urgent_p99: r.urgent.p99 <= 100,
  };
}

function maxRss(r: Results): number {
  return Math.max(...FLEET.map((s) => r.burst.maxRssMb[s] ?? 0));
}

/** A CPU breakdown for the JSON line: ms per message by process (the load generator left out), and the total. */
function cpuFigure(cpu: Cpu): Record<string, number> {
  const { bench: _bench, ...byProcess } = cpu.byProcess;
  return { ...byProcess, total: cpu.total };
}

export function figures(r: Results): Record<string, unknown> {
  const limit = limitPerSecond(r.raw.perSecond, r.http.perSecond);
  const t = targets(r);
  return {
    mode: r.mode,
    pipeline_per_s: Math.round(r.pipeline.perSecond),
    peer_amqp_per_s: Math.round(r.peerAmqp.perSecond),
    peer_bullmq_per_s: Math.round(r.peerBullmq.perSecond),
    inbound_per_s: Math.round(r.inbound.perSecond),
    raw_hop_per_s: Math.round(r.raw.perSecond),
    http_hop_per_s: Math.round(r.http.perSecond),
    limit_per_s: Math.round(limit),
    ratio_vs_limit: round(r.pipeline.perSecond / limit, 3),
    p50_ms: Math.round(r.latency.p50),
    p99_ms: Math.round(r.latency.p99),
    urgent_p99_ms: Math.round(r.urgent.p99),
    burst_accept_per_s: Math.round(r.burst.acceptPerSecond),
    peer_amqp_accept_per_s: Math.round(r.peerAmqp.burst.acceptPerSecond),
    peer_bullmq_accept_per_s: Math.round(r.peerBullmq.burst.acceptPerSecond),
    burst_max_rss_mb: round(maxRss(r), 1),
    memory_limits_mb: typeof r.memoryLimits === 'string' ? null : memoryLimitsOf(r.memoryLimits),
    lost: r.burst.byId.lost,
    cpu_ms_per_msg: {
      pipeline: cpuFigure(r.pipeline.cpu),
      peer_amqp: cpuFigure(r.peerAmqp.cpu),
      peer_bullmq: cpuFigure(r.peerBullmq.cpu),
      inbound: cpuFigure(r.inbound.cpu),
    },
    // Broker WAL flushes (broker-wal.ts) in the p99_ms and urgent_p99_ms windows; -1: not watched.
    wal_flushes: [r.latency.wal, r.urgent.wal].map((w) => (w ? w.flushes : -1)).join('/'),
    targets_missed: Object.entries(t)
      .filter(([, ok]) => !ok)
      .map(([k]) => k),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** "ingress 0.41 + rabbitmq 0.30 + … = 1.2 ms" (the load generator and the provider shown apart). */
function cpuLine(cpu: Cpu | undefined): string {
  if (!cpu) return '';
  const apart = new Set(['bench', 'provider']);
  const parts = Object.entries(cpu.byProcess)
    .filter(([k]) => !apart.has(k))
    .map(([k, v]) => `${k} ${v.toFixed(3)}`);
  const extra = [
    ['provider', 'provider'],
    ['bench', 'load generator'],
  ].flatMap(([k, label]) => (cpu.byProcess[k] !== undefined ? [`${label} ${cpu.byProcess[k].toFixed(3)}`] : []));
  return `CPU ms/msg: ${parts.join(' + ')}${parts.length ? ' = ' : ''}${cpu.total.toFixed(3)}${extra.length ? ` (${extra.join(', ')})` : ''}`;
}

/** The urgent messages of the workers' first seconds, measured apart (UrgentResult.startup). */
function startup(u: UrgentResult): string {
  const s = u.startup;
  return `; before that, in the workers' first seconds on the backlog: ${s.count} urgent msgs, p50 ${n(s.p50)}, max ${n(s.max)} ms (not in the p99)`;
}

/** "; 1,234 sent to a retry tier by the workers" when any were (with "(send/throttled 1,200, …)" when known). */
function retried(count: number, by?: Record<string, number>): string {
  const parts = Object.entries(by ?? {})
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${n(v)}`);
  return count > 0 ? `; ${n(count)} sent to a retry tier by the workers meanwhile${parts.length ? ` (${parts.join(', ')})` : ''}` : '';
}

function trials(h: HopResult): string {
  return h.trials && h.trials.length > 1 ? `; median of ${h.trials.map((x) => n(x)).join(' / ')}` : '';
}

function peerRow(name: string, p: PeerResult, how: string): string[] {
  return [name, n(p.perSecond), '', `${how}; ${n(p.count)} msgs in ${p.seconds.toFixed(1)} s (accepted at ${n(p.acceptPerSecond)}/s); ${cpuLine(p.cpu)}`];
}

function peerBurstRow(name: string, p: PeerResult): string[] {
  const b = p.burst;
  const held = b.held === b.accepted ? 'all in its queue after' : `${n(b.held)} in its queue after (LOST ${n(b.accepted - b.held)})`;
  return [name, n(b.acceptPerSecond), '', `${n(b.accepted)} of ${n(b.offered)} accepted in ${b.acceptSeconds.toFixed(1)} s, its consumer stopped; ${held}`];
}

/**
 * Where the pipeline's CPU per message goes beyond the amqplib peer's, process by process (the
 * sender against the peer's consumer): what to work on when a throughput target is missed.
 */
function cpuGap(pipeline: Cpu, peer: Cpu): string {
  const ours = pipeline.byProcess;
  const theirs = peer.byProcess;
  const pairs: Array<[string, number, number]> = [
    ['sender (peer: consumer)', ours.sender ?? 0, theirs.consumer ?? 0],
    ['ingress', ours.ingress ?? 0, theirs.ingress ?? 0],
    ['rabbitmq', ours.rabbitmq ?? 0, theirs.rabbitmq ?? 0],
    ['redis', ours.redis ?? 0, 0],
    ['dispatcher', ours.dispatcher ?? 0, 0],
  ];
  const parts = pairs.sort((a, b) => b[1] - b[2] - (a[1] - a[2])).map(([k, a, b]) => `${k} ${a.toFixed(3)} vs ${b.toFixed(3)}`);
  return `CPU ms/msg, pipeline vs peer_amqp, largest gap first: ${parts.join('; ')}; total ${pipeline.total.toFixed(3)} vs ${peer.total.toFixed(3)}`;
}

const n = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '?');
const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');

export function table(r: Results): string {
  const f = figures(r);
  const ok = targets(r);
  const t = new Table({
    head: ['figure', 'value', 'target', 'how it was measured'],
    style: { head: [], border: [] },
    wordWrap: true,
    colWidths: [26, 12, 22, 62],
  });
  const b = r.burst;
  const rss = Object.entries(b.maxRssMb)
    .map(([k, v]) => `${k} ${v.toFixed(0)}`)
    .join(', ');
  const fasterAccept = Math.max(r.peerAmqp.burst.acceptPerSecond, r.peerBullmq.burst.acceptPerSecond);
  const batches = `${r.pipeline.shape.concurrency} batches of ${r.pipeline.shape.batchSize} in flight, ${n(r.pipeline.shape.users)} users`;
  t.push(
    [
      'pipeline_per_s',
      n(r.pipeline.perSecond),
      `≥ peer_bullmq: ${verdict(ok.pipeline_vs_peer_bullmq)}; ≥ 0.75 × peer_amqp (${n(0.75 * r.peerAmqp.perSecond)}): ${verdict(ok.pipeline_vs_peer_amqp)}`,
      `Postmaster outbound, HTTP ingress → sender → provider, ${batches}; ${n(r.pipeline.count)} msgs, first request → last delivery ${r.pipeline.seconds.toFixed(1)} s (accepted at ${n(r.pipeline.acceptPerSecond)}/s)${retried(r.pipeline.retried)}; ${cpuLine(r.pipeline.cpu)}`,
    ],
    ['pipeline CPU vs peer', '', '', cpuGap(r.pipeline.cpu, r.peerAmqp.cpu)],
    peerRow('peer_amqp_per_s', r.peerAmqp, 'express → confirmed publish → 1 quorum queue → 1 consumer (prefetch 64) → undici POST → ack, the same load'),
    peerRow('peer_bullmq_per_s', r.peerBullmq, 'express → addBulk → 1 Worker (concurrency 64) → undici POST, the same load'),
    [
      'inbound_per_s',
      n(r.inbound.perSecond),
      '',
      `signed webhooks (${r.inbound.count} msgs, 1 per webhook) → ingress → dispatcher (echo) → sender → provider, ${r.inbound.seconds.toFixed(1)} s; ${cpuLine(r.inbound.cpu)}`,
    ],
    [
      'raw_hop_per_s',
      n(r.raw.perSecond),
      '',
      `amqplib confirm-publish → quorum queue → consume+ack, ${n(r.raw.count)} msgs in ${r.raw.seconds.toFixed(1)} s${trials(r.raw)}; ${cpuLine(r.raw.cpu)}`,
    ],
    [
      'http_hop_per_s',
      n(r.http.perSecond),
      '',
      `undici keep-alive → the provider, ${n(r.http.count)} requests in ${r.http.seconds.toFixed(1)} s${trials(r.http)}`,
    ],
    ['limit_per_s', n(f.limit_per_s as number), '', `1 / (1 / raw + 1 / http); ratio_vs_limit ${f.ratio_vs_limit} (information)`],
    [
      'p50_ms',
      n(r.latency.p50),
      '',
      `accept → provider, open loop at ${n(r.latency.ratePerSecond)}/s (half of pipeline_per_s, batches of ${r.latency.batchSize}), ${n(r.latency.count)} msgs${retried(r.latency.retried)}`,
    ],
    ['p99_ms', n(r.latency.p99), `≤ 50: ${verdict(ok.p99)}`, `the same; max ${n(r.latency.max)} ms${walWords(r.latency.wal)}`],
    [
      'urgent_p99_ms',
      n(r.urgent.p99),
      `≤ 100: ${verdict(ok.urgent_p99)}`,
      `${r.urgent.count} urgent msgs while ${n(r.urgent.backlogAtStart)} → ${n(r.urgent.backlogAtEnd)} normal ones waited (backlog ${n(r.urgent.backlog)}), shared replicas; p50 ${n(r.urgent.p50)}, max ${n(r.urgent.max)} ms${retried(r.urgent.retried)}${startup(r.urgent)}${walWords(r.urgent.wal)}`,
    ],
    [
      'burst_accept_per_s',
      n(b.acceptPerSecond),
      `≥ 0.75 × faster peer (${n(0.75 * fasterAccept)}): ${verdict(ok.burst_accept)}`,
      `${n(b.accepted)} of ${n(b.offered)} accepted in ${b.acceptSeconds.toFixed(1)} s (batches of 500, 2 in flight, ${n(b.retried503)} items answered 503 and sent again); meanwhile the sender (limit 1,000/s) delivered ${n(b.deliveredPerSecondDuringAccept)}/s${retried(b.retried, b.retriedBy)}`,
    ],
    peerBurstRow('peer_amqp_accept_per_s', r.peerAmqp),
    peerBurstRow('peer_bullmq_accept_per_s', r.peerBullmq),
    [
      'burst_max_rss_mb',
      String(f.burst_max_rss_mb),
      `≤ 300: ${verdict(ok.burst_max_rss)}`,
      `max VmRSS MB: ${rss} (${memoryLimitWords(r.memoryLimits)}); RabbitMQ node up to ${n(b.brokerMaxMemMb)} MB`,
    ],
    [
      'lost',
      String(b.byId.lost),
      `0: ${verdict(ok.lost)}`,
      `by count: ${n(b.accepted)} accepted − ${n(b.delivered)} delivered − ${n(b.queued)} queued (${n(b.inRetryTiers)} in retry tiers) − ${n(b.deadLettered)} DLQ = ${n(b.lostByCount)}${b.settled ? '' : ' (queue depths did not settle)'}; ` +
        `by id: ${n(b.byId.delivered)} delivered + ${n(b.byId.queued)} queued + ${n(b.byId.deadLettered)} DLQ + ${n(b.byId.lost)} lost; ` +
        `copies in the broker ${n(b.byId.brokerDuplicates)}, 503'd but queued ${n(b.byId.unacknowledgedButQueued)}, duplicates at the provider ${b.duplicates}`,
    ],
  );
  return t.toString();
}
