/**
 * The latest full run as written between the markers of docs/BENCHMARKS.md (`bench:latest-run`):
 * the run's circumstances, its two tables, where the CPU gap to the peers is, and its JSON line.
 * What each figure means and what bounds it is prose kept by hand around the block.
 */
import { figures, memoryLimitWords, targets, type Results } from './report.js';

export interface RunMeta {
  /** When the run ended, e.g. "2026-12-05 20:59 UTC". */
  date: string;
  /** "2 cores, load average 0.9 at start, 4.3 at end, Node v20.20.2". */
  machine: string;
  /** The commit the run was built from, or "?" outside a git checkout. */
  commit: string;
}

type Cpu = Record<string, number>;

const n = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '?');
const ms = (x: number | undefined) => (x === undefined ? '—' : x.toFixed(3));
const verdict = (ok: boolean) => (ok ? 'met' : '**missed**');

/** The processes of Postmaster's pipeline beside their counterparts in the peers (sender ↔ consumer). */
const ROWS: Array<[label: string, ours: string, peer: string]> = [
  ['ingress', 'ingress', 'ingress'],
  ['sender / consumer', 'sender', 'consumer'],
  ['dispatcher', 'dispatcher', ''],
  ['rabbitmq', 'rabbitmq', 'rabbitmq'],
  ['redis', 'redis', 'redis'],
];

/** "rabbitmq 0.967, ingress 0.796, …; total 2.72", largest first, the provider left out. */
function cpuWords(cpu: Cpu): string {
  const parts = Object.entries(cpu)
    .filter(([k]) => k !== 'total' && k !== 'provider')
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v.toFixed(3)}`);
  return `${parts.join(', ')}; total ${cpu.total.toFixed(3)}`;
}

/** Process by process, what Postmaster spends beyond `peer_amqp`, and the CPU a message may cost to reach each throughput target. */
function gap(r: Results, cpu: { pipeline: Cpu; peer_amqp: Cpu }): string {
  const diffs = ROWS.map(([label, ours, peer]) => [label, (cpu.pipeline[ours] ?? 0) - (peer ? (cpu.peer_amqp[peer] ?? 0) : 0)] as const)
    .sort((a, b) => b[1] - a[1])
    .map(([label, d]) => `${label} ${d >= 0 ? '+' : ''}${d.toFixed(3)}`);
  const budget = (rate: number) => ((cpu.pipeline.total * r.pipeline.perSecond) / rate).toFixed(2);
  return (
    `**Where the gap is.** At ${n(r.pipeline.perSecond)}/s Postmaster's own processes use ${cpu.pipeline.total.toFixed(3)} CPU ms a message; ` +
    `in the same CPU, reaching \`peer_bullmq_per_s\` needs about ${budget(r.peerBullmq.perSecond)} ms and 0.75 × \`peer_amqp_per_s\` about ` +
    `${budget(0.75 * r.peerAmqp.perSecond)} ms. Beyond \`peer_amqp\`, by process (ms a message): ${diffs.join(', ')}.`
  );
}

export function latestRunBlock(r: Results, meta: RunMeta): string {
  const f = figures(r);
  const ok = targets(r);
  const cpu = f.cpu_ms_per_msg as Record<'pipeline' | 'peer_amqp' | 'peer_bullmq' | 'inbound', Cpu>;
  const fasterAccept = Math.max(r.peerAmqp.burst.acceptPerSecond, r.peerBullmq.burst.acceptPerSecond);
  const largest = Object.entries(r.burst.maxRssMb)
    .filter(([k]) => ['ingress', 'dispatcher', 'sender'].includes(k))
    .sort((a, b) => b[1] - a[1])[0];
  const wal =
    r.latency.wal === null
      ? 'WAL not watched'
      : r.latency.wal.flushes === 0
        ? 'no WAL flush in the window'
        : `${r.latency.wal.flushes} WAL flush(es) in the window`;
  const md = [
    `\`npm run bench\`, ${meta.date}, ${r.seconds.toFixed(0)} s; ${meta.machine}; commit ${meta.commit}.`,
    '',
    '| figure | Postmaster | `peer_amqp` | `peer_bullmq` | target |',
    '|---|---|---|---|---|',
    `| delivered msgs/s (batches of ${r.pipeline.shape.batchSize}) | \`pipeline_per_s\` **${n(r.pipeline.perSecond)}** | ${n(r.peerAmqp.perSecond)} | ${n(r.peerBullmq.perSecond)} | ` +
      `≥ ${n(r.peerBullmq.perSecond)}: ${verdict(ok.pipeline_vs_peer_bullmq)}; ≥ ${n(0.75 * r.peerAmqp.perSecond)}: ${verdict(ok.pipeline_vs_peer_amqp)} |`,
    `| CPU ms per message, total | ${ms(cpu.pipeline.total)} | ${ms(cpu.peer_amqp.total)} | ${ms(cpu.peer_bullmq.total)} | |`,
    ...ROWS.map(
      ([label, ours, peer]) =>
        `| … ${label} | ${ms(cpu.pipeline[ours])} | ${peer ? ms(cpu.peer_amqp[peer]) : '—'} | ${peer ? ms(cpu.peer_bullmq[peer]) : '—'} | |`,
    ),
    `| burst acceptance, msgs/s | \`burst_accept_per_s\` ${n(r.burst.acceptPerSecond)} | ${n(r.peerAmqp.burst.acceptPerSecond)} | ${n(r.peerBullmq.burst.acceptPerSecond)} | ≥ ${n(0.75 * fasterAccept)}: ${verdict(ok.burst_accept)} |`,
    '',
    '| figure | value | target |',
    '|---|---|---|',
    `| \`inbound_per_s\` | ${n(r.inbound.perSecond)} (CPU ms/msg: ${cpuWords(cpu.inbound)}) | |`,
    `| \`raw_hop_per_s\` / \`http_hop_per_s\` | ${n(r.raw.perSecond)} / ${n(r.http.perSecond)} | |`,
    `| \`limit_per_s\` / \`ratio_vs_limit\` | ${n(f.limit_per_s as number)} / ${f.ratio_vs_limit} | information |`,
    `| \`p50_ms\` / \`p99_ms\` at ${n(r.latency.ratePerSecond)}/s | ${n(r.latency.p50)} / ${n(r.latency.p99)} (max ${n(r.latency.max)}; ${wal}) | p99 ≤ 50: ${verdict(ok.p99)} |`,
    `| \`urgent_p99_ms\` (${n(r.urgent.backlog)} backlog, shared replicas) | ${n(r.urgent.p99)} | ≤ 100: ${verdict(ok.urgent_p99)} |`,
    `| \`burst_max_rss_mb\` | ${f.burst_max_rss_mb} (the ${largest?.[0] ?? '?'}; ${memoryLimitWords(r.memoryLimits)}) | ≤ 300: ${verdict(ok.burst_max_rss)} |`,
    `| \`lost\` | ${r.burst.byId.lost} of ${n(r.burst.accepted)} | 0: ${verdict(ok.lost)} |`,
    '',
    gap(r, cpu),
    '',
    'The JSON line of that run:',
    '',
    '```json',
    JSON.stringify(f),
    '```',
  ];
  return md.join('\n');
}
