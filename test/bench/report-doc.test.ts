import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { latestRunBlock } from '../../scripts/bench/report-doc.js';
import type { Results } from '../../scripts/bench/report.js';
import { markers, replaceBlock } from '../../scripts/doc-block.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const doc = readFileSync(path.join(root, 'docs', 'BENCHMARKS.md'), 'utf8');

const cpu = (byProcess: Record<string, number>) => ({
  byProcess,
  total: Object.entries(byProcess)
    .filter(([k]) => k !== 'provider')
    .reduce((s, [, v]) => s + v, 0),
});
const shape = { count: 50_000, warmup: 5000, users: 10_000, concurrency: 8, batchSize: 50 };
const peer = (perSecond: number, c: Record<string, number>, acceptPerSecond: number) => ({
  shape,
  count: 50_000,
  perSecond,
  acceptPerSecond: 9000,
  seconds: 10,
  retried503: 0,
  cpu: cpu(c),
  kind: 'amqp',
  burst: { offered: 100_000, accepted: 100_000, acceptPerSecond, acceptSeconds: 4, held: 100_000 },
});
/** The parts of a full run's results that the page's block is written from. */
const results = {
  mode: 'full',
  seconds: 339,
  raw: { count: 100_000, seconds: 6, perSecond: 16_937 },
  http: { count: 100_000, seconds: 5, perSecond: 19_437 },
  peerAmqp: peer(5092, { rabbitmq: 0.151, consumer: 0.081, ingress: 0.042, provider: 0.046 }, 24_137),
  peerBullmq: peer(4362, { redis: 0.111, consumer: 0.153, ingress: 0.055 }, 24_366),
  pipeline: { ...peer(3185, { sender: 0.178, rabbitmq: 0.165, ingress: 0.102, redis: 0.053, dispatcher: 0.006 }, 0), retried: 0 },
  latency: { ratePerSecond: 1592, batchSize: 50, retried: 0, count: 47_000, p50: 15, p99: 53, max: 112, wal: { flushes: 0, flushMs: 0, p99Clear: null } },
  inbound: { count: 10_000, perSecond: 612, seconds: 16, cpu: cpu({ rabbitmq: 0.967, ingress: 0.796 }) },
  urgent: { count: 200, backlog: 100_000, p99: 34, wal: null },
  burst: { offered: 1_000_000, accepted: 1_000_000, acceptPerSecond: 7283, maxRssMb: { ingress: 249.4, sender: 120, rabbitmq: 900 }, byId: { lost: 0 } },
  memoryLimits: { ingress: 512, dispatcher: 768, sender: 768 },
} as unknown as Results;
const meta = { date: '2030-01-01 00:00 UTC', machine: '2 cores', commit: 'abc1234' };

/** docs/BENCHMARKS.md is prose by hand around one block a full `npm run bench` writes. */
describe('bench report: the latest run in docs/BENCHMARKS.md', () => {
  it("writes the run's figures, each target's verdict and where the CPU gap is", () => {
    const block = latestRunBlock(results, meta);
    expect(block).to.include('`npm run bench`, 2030-01-01 00:00 UTC, 339 s; 2 cores; commit abc1234.');
    expect(block).to.include('| delivered msgs/s (batches of 50) | `pipeline_per_s` **3,185** | 5,092 | 4,362 | ≥ 4,362: **missed**; ≥ 3,819: **missed** |');
    expect(block).to.include('| … sender / consumer | 0.178 | 0.081 | 0.153 | |');
    expect(block).to.include('| `p50_ms` / `p99_ms` at 1,592/s | 15 / 53 (max 112; no WAL flush in the window) | p99 ≤ 50: **missed** |');
    expect(block).to.include('| `burst_max_rss_mb` | 249.4 (the ingress; memory limits ingress 512, dispatcher 768, sender 768 MiB) | ≤ 300: met |');
    expect(block).to.include('| `lost` | 0 of 1,000,000 | 0: met |');
    expect(block).to.include('reaching `peer_bullmq_per_s` needs about 0.37 ms and 0.75 × `peer_amqp_per_s` about 0.42 ms');
    expect(block).to.include('sender / consumer +0.097, ingress +0.060, redis +0.053, rabbitmq +0.014, dispatcher +0.006');
    const json = JSON.parse(block.split('\n').find((l) => l.startsWith('{'))!) as Record<string, unknown>;
    expect(json).to.include({ mode: 'full', pipeline_per_s: 3185, p99_ms: 53, lost: 0 });
    expect(json.memory_limits_mb).to.deep.equal({ ingress: 512, dispatcher: 768, sender: 768 });
  });

  it('says when the services ran without a memory limit, and why', () => {
    const block = latestRunBlock({ ...results, memoryLimits: 'cannot make a memory cgroup under /sys/fs/cgroup/memory (EACCES)' }, meta);
    expect(block).to.include('(the ingress; no memory limit (cannot make a memory cgroup under /sys/fs/cgroup/memory (EACCES)))');
    const json = JSON.parse(block.split('\n').find((l) => l.startsWith('{'))!) as Record<string, unknown>;
    expect(json.memory_limits_mb).to.equal(null);
  });

  it('replaces only the block between the markers, the same way twice', () => {
    const { begin, end } = markers('bench:latest-run');
    const once = replaceBlock(doc, 'bench:latest-run', latestRunBlock(results, meta));
    const outside = (d: string) => d.slice(0, d.indexOf(begin)) + d.slice(d.indexOf(end));
    expect(outside(once)).to.equal(outside(doc));
    expect(replaceBlock(once, 'bench:latest-run', latestRunBlock(results, meta))).to.equal(once);
  });
});
