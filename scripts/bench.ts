/**
 * `npm run bench` — one command, one run: the bare hops that bound the outbound path (broker, HTTP),
 * the peers (the amqplib and BullMQ pipelines a user would write instead) and Postmaster, all
 * against one bare Cloud-API-shaped provider, interleaved (peer_amqp, pipeline, peer_bullmq); then
 * the pipeline's latency at half its rate, the inbound path (signed webhooks), urgent messages under
 * a backlog and a burst with the sender limited. A table, and as the last line one JSON object.
 * A full run writes its figures between the latest-run markers of docs/BENCHMARKS.md (`--no-doc`:
 * not). `--quick` runs everything scaled down (a few minutes); `--profile [dir]` runs only the pipeline
 * throughput with `node --cpu-prof` on the services and prints their top self time (`--profile
 * --singles`: the one-message-per-request load instead of batches; `--profile --alloc`: bytes
 * allocated by site instead of CPU time); `--urgent-only`, `--latency-only` and `--topology-sweep`
 * run just those measurements.
 *
 * Each run works in its own vhost and Redis key prefix on 127.0.0.1, bounded in count and time, and
 * removes them (and stops its processes) even when it fails or is interrupted.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureBurst } from './bench/burst.js';
import { infraPids, type Pids } from './bench/cpu.js';
import { Fleet } from './bench/fleet.js';
import { measureHops, pick } from './bench/hops.js';
import { measureInbound } from './bench/inbound.js';
import { createSpace, MGMT_URL, type BenchSpace } from './bench/isolation.js';
import { IngressClient } from './bench/load.js';
import { measurePeer, type PeerKind } from './bench/peers/measure.js';
import { measureLatency, measurePipeline } from './bench/pipeline.js';
import { memoryLimitsUnavailable, runningChildren, stopAll } from './lib/processes.js';
import { formatAlloc, formatSummary, summarizeAllocDir, summarizeDir } from './bench/profile.js';
import { startProvider, type LedgerClient, type Provider } from './bench/provider.js';
import { figures, table, type Results } from './bench/report.js';
import { latestRunBlock } from './bench/report-doc.js';
import { FULL, QUICK, type Sizes } from './bench/sizes.js';
import { topologyHop } from './bench/topology-hop.js';
import { measureUrgent, type UrgentResult } from './bench/urgent.js';
import { writeBlock } from './doc-block.js';

/** Connections of the bench's client to an ingress (Postmaster's or a peer's): enough for the open-loop phases' in-flight requests. */
const CLIENT_CONNECTIONS = 256;

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const profileAt = args.indexOf('--profile');
const profileDir =
  profileAt < 0
    ? undefined
    : args[profileAt + 1] && !args[profileAt + 1].startsWith('--')
      ? path.resolve(args[profileAt + 1])
      : path.join(os.tmpdir(), `postmaster-bench-profile-${Date.now()}`);
const urgentOnly = args.includes('--urgent-only');
/** `--latency-only`: the pipeline throughput (its rate sets the load), then the batches' latency at half of it. */
const latencyOnly = args.includes('--latency-only');
/** `--topology-sweep`: only the topology hop, over shard counts and confirm windows (broker CPU per message). */
const topologySweep = args.includes('--topology-sweep');
/** `--profile --singles`: profile the single-POST load (POST /v1/messages) instead of the batches. */
const profileSingles = args.includes('--singles');
/** `--profile --alloc`: sample the services' allocations (freed ones included) instead of their CPU time. */
const profileAlloc = args.includes('--alloc');
/** `--urgent-only`: the pipeline rate the urgent messages' spread is computed from (not measured in that mode). */
const ASSUMED_PIPELINE_PER_S = 1500;
/** A full run writes its figures as docs/BENCHMARKS.md's latest run, unless `--no-doc`. */
const writeDoc = !quick && !args.includes('--no-doc');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const sizes: Sizes = quick ? QUICK : FULL;
const startedAt = Date.now();
/** Other work on the machine shows here: the 1-minute load average when the run started. */
const loadAtStart = os.loadavg()[0];

function log(line: string): void {
  process.stderr.write(`[bench +${((Date.now() - startedAt) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
}

/** Every process a pipeline message costs CPU in, and the provider (shown apart). */
function pipelinePids(fleet: Fleet, infra: Pids, provider: Provider): Pids {
  return { ...infra, provider: provider.child.pid, ...Object.fromEntries(fleet.children(['ingress', 'dispatcher', 'sender']).map((c) => [c.name, c.pid])) };
}

async function startFleet(fleet: Fleet): Promise<void> {
  await fleet.init();
  for (const name of ['ingress', 'dispatcher', 'sender'] as const) {
    await fleet.start(name);
    log(`${name} ready`);
  }
}

/** The pipeline's throughput (batches), then the batches' latency at half of it: `p50_ms` / `p99_ms`. */
async function pipelineAndLatency(fleet: Fleet, client: IngressClient, ledger: LedgerClient, pids: Pids) {
  const pipeline = await measurePipeline(fleet, client, ledger, sizes, pids, log);
  log(`pipeline: ${pipeline.perSecond.toFixed(0)}/s; CPU ms/msg ${JSON.stringify(pipeline.cpu.byProcess)}`);
  const latency = await measureLatency(fleet, client, ledger, sizes, pipeline.perSecond / 2, log);
  log(`latency: p50 ${latency.p50} ms, p99 ${latency.p99} ms`);
  return { pipeline, latency };
}

async function benchmark(space: BenchSpace, fleet: Fleet, provider: Provider): Promise<void> {
  const infra = await infraPids(MGMT_URL, space.redis);
  const hop = await measureHops(space, provider, sizes, infra, log);
  const peer = (kind: PeerKind) => measurePeer({ kind, space, provider, sizes, infra, clientConnections: CLIENT_CONNECTIONS, log });
  const peerAmqp = await peer('amqp');
  await startFleet(fleet);
  const ledger = provider.ledger;
  const client = new IngressClient(fleet.ingressUrl, fleet.cfg.ingressApiToken, CLIENT_CONNECTIONS);
  try {
    const pids = pipelinePids(fleet, infra, provider);
    const { pipeline, latency } = await pipelineAndLatency(fleet, client, ledger, pids);
    const peerBullmq = await peer('bullmq');
    const inbound = await measureInbound(fleet, ledger, sizes, pids, log);
    log(`inbound: ${inbound.perSecond.toFixed(0)}/s; CPU ms/msg ${JSON.stringify(inbound.cpu.byProcess)}`);
    const urgent = await measureUrgent(fleet, client, ledger, sizes, pipeline.perSecond, log);
    log(urgentLine('urgent', urgent));
    const burst = await measureBurst(fleet, client, ledger, sizes, log);
    const results: Results = {
      mode: sizes.name,
      ...hop,
      peerAmqp,
      peerBullmq,
      pipeline,
      latency,
      inbound,
      urgent,
      burst,
      memoryLimits: memoryLimitsUnavailable() ?? fleet.memoryLimits,
      seconds: (Date.now() - startedAt) / 1000,
    };
    log(`done in ${results.seconds.toFixed(0)} s`);
    const machine = `${os.cpus().length} cores, load average ${loadAtStart.toFixed(1)} at start, ${os.loadavg()[0].toFixed(1)} at end, Node ${process.version}`;
    process.stdout.write(`Postmaster bench (${sizes.name}), ${new Date().toISOString()}, ${results.seconds.toFixed(0)} s, ${machine}\n`);
    process.stdout.write(table(results) + '\n');
    if (writeDoc) {
      const doc = path.join(root, 'docs', 'BENCHMARKS.md');
      await writeBlock(
        doc,
        'bench:latest-run',
        latestRunBlock(results, { date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC', machine, commit: commitOf(root) }),
      );
      log(`wrote the latest run into ${doc}`);
    }
    process.stdout.write(JSON.stringify(figures(results)) + '\n');
  } finally {
    await client.close();
  }
}

/** The checkout's commit, with "+" when code has uncommitted changes (docs/ aside); "?" outside git. */
function commitOf(dir: string): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', '.', ':!docs'], { cwd: dir, encoding: 'utf8' }).trim();
    return dirty ? `${sha}+` : sha;
  } catch {
    return '?';
  }
}

async function profile(space: BenchSpace, fleet: Fleet, provider: Provider): Promise<void> {
  const infra = await infraPids(MGMT_URL, space.redis);
  await startFleet(fleet);
  const client = new IngressClient(fleet.ingressUrl, fleet.cfg.ingressApiToken, CLIENT_CONNECTIONS);
  try {
    const shape = profileSingles ? sizes.singles : sizes.pipeline;
    const pipeline = await measurePipeline(fleet, client, provider.ledger, sizes, pipelinePids(fleet, infra, provider), log, shape);
    log(`pipeline: ${pipeline.perSecond.toFixed(0)}/s; CPU ms/msg ${JSON.stringify(pipeline.cpu.byProcess)}`);
    log('stopping the services to write their profiles');
    await fleet.close();
    const services = ['ingress', 'dispatcher', 'sender'];
    // Allocations are counted from the services' start: the warm-up's messages are in them too.
    const summaries = profileAlloc
      ? summarizeAllocDir(profileDir!, services, shape.count + shape.warmup).map(formatAlloc)
      : summarizeDir(profileDir!, services).map(formatSummary);
    for (const s of summaries) process.stdout.write(s + '\n\n');
    process.stdout.write(`profiles: ${profileDir}\n`);
    process.stdout.write(JSON.stringify({ mode: sizes.name, pipeline_per_s: Math.round(pipeline.perSecond) }) + '\n');
  } finally {
    await client.close();
  }
}

/** The urgent figures, with their two legs when the status records have a `dispatched` step (messages through the dispatcher). */
function urgentLine(label: string, u: UrgentResult): string {
  const legs = Number.isFinite(u.legs.dispatch[0])
    ? `; legs p50/p99 accept→dispatched ${u.legs.dispatch.join('/')}, dispatched→provider ${u.legs.send.join('/')} ms`
    : '';
  return `${label}: p50 ${u.p50}, p99 ${u.p99} ms${legs}`;
}

/** Only the urgent measurement with shared replicas, then with dedicated ones (a few minutes): for work on the urgent lane. */
async function urgentOnlyRun(fleet: Fleet, ledger: LedgerClient): Promise<void> {
  await startFleet(fleet);
  const client = new IngressClient(fleet.ingressUrl, fleet.cfg.ingressApiToken, CLIENT_CONNECTIONS);
  try {
    log(`urgent only: the spread assumes a pipeline rate of ${ASSUMED_PIPELINE_PER_S}/s`);
    const shared = await measureUrgent(fleet, client, ledger, sizes, ASSUMED_PIPELINE_PER_S, log);
    log(urgentLine('urgent', shared));
    const label = 'urgent (dedicated replicas)';
    const dedicated = await measureUrgent(fleet, client, ledger, sizes, ASSUMED_PIPELINE_PER_S, (m) => log(m.replace(/^urgent:/, `${label}:`)), {
      dedicated: true,
    });
    log(urgentLine(label, dedicated));
    const brief = (u: UrgentResult) => ({
      p50: u.p50,
      p99: u.p99,
      max: u.max,
      legs: u.legs,
      backlog: [u.backlogAtStart, u.backlogAtEnd],
      held: u.held,
      windowMs: u.windowMs,
      startup: u.startup,
      wal: u.wal,
    });
    process.stdout.write(JSON.stringify({ mode: `${sizes.name}-urgent-only`, urgent: brief(shared), urgent_dedicated: brief(dedicated) }) + '\n');
  } finally {
    await client.close();
  }
}

/** Only `p50_ms` / `p99_ms` and the throughput they are measured at half of (a few minutes): for work on the latency tail. */
async function latencyOnlyRun(space: BenchSpace, fleet: Fleet, provider: Provider): Promise<void> {
  const infra = await infraPids(MGMT_URL, space.redis);
  await startFleet(fleet);
  const client = new IngressClient(fleet.ingressUrl, fleet.cfg.ingressApiToken, CLIENT_CONNECTIONS);
  try {
    const { pipeline, latency } = await pipelineAndLatency(fleet, client, provider.ledger, pipelinePids(fleet, infra, provider));
    const rss = Object.fromEntries(fleet.children(['ingress', 'dispatcher', 'sender']).map((c) => [c.name, Math.round(c.rssMb())]));
    process.stdout.write(
      JSON.stringify({
        mode: `${sizes.name}-latency-only`,
        pipeline_per_s: Math.round(pipeline.perSecond),
        p50_ms: latency.p50,
        p99_ms: latency.p99,
        max_ms: latency.max,
        count: latency.count,
        wal: latency.wal,
        pipeline_cpu_ms_per_msg: pipeline.cpu,
        rss_mb_at_end: rss,
      }) + '\n',
    );
  } finally {
    await client.close();
  }
}

/**
 * The topology hop with 1, 4 and the configured number of shards, each at confirm windows of 16, 50
 * and the raw hop's: how the broker's cost per message depends on how many messages reach each
 * queue at a time (the pipeline's stages publish a few at a time, the raw hop 256).
 */
async function topologySweepRun(space: BenchSpace): Promise<void> {
  const infra = await infraPids(MGMT_URL, space.redis);
  const cfg = space.config();
  const rows: Array<{ shards: number; window: number; per_s: number; broker_ms_per_msg: number | null }> = [];
  for (const shards of [...new Set([1, 4, cfg.shards])]) {
    for (const window of [16, 50, sizes.raw.window]) {
      const r = await topologyHop({
        amqpUrl: space.amqpUrl,
        vhost: space.vhost,
        managementUrl: MGMT_URL,
        cfg: { ...cfg, shards },
        count: sizes.raw.count / 2,
        window,
        users: sizes.pipeline.users,
        timeoutMs: sizes.drainTimeoutMs,
        pids: pick(infra, 'rabbitmq'),
      });
      const broker = r.cpu?.byProcess.rabbitmq;
      rows.push({ shards, window, per_s: Math.round(r.perSecond), broker_ms_per_msg: broker === undefined ? null : Math.round(broker * 1000) / 1000 });
      log(`topology hop, ${shards} shards, window ${window}: ${r.perSecond.toFixed(0)}/s, broker ${broker?.toFixed(3) ?? '?'} CPU ms/msg`);
    }
  }
  process.stdout.write(JSON.stringify({ mode: `${sizes.name}-topology-sweep`, rows }) + '\n');
}

async function main(): Promise<number> {
  const space = await createSpace();
  log(`vhost ${space.vhost}, Redis prefix ${space.redisKeyPrefix} (${sizes.name}${profileDir ? `, profiling into ${profileDir}` : ''})`);
  let fleet: Fleet | null = null;
  let cleaning: Promise<void> | null = null;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await fleet?.close().catch((err: Error) => log(`clean-up: fleet: ${err.message}`));
      await stopAll().catch(() => {});
      await space.cleanup().catch((err: Error) => log(`clean-up: ${err.message}`));
    })());
  let signalled: NodeJS.Signals | null = null;
  const interrupted = new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      signalled = signal;
      log(`${signal}: stopping and cleaning up`);
      void cleanup().then(() => resolve(130));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`run exceeded its bound of ${sizes.runTimeoutMs / 60_000} min`)), sizes.runTimeoutMs);
  });
  try {
    const work = (async () => {
      if (topologySweep) return topologySweepRun(space);
      const provider = await startProvider();
      const f = (fleet = new Fleet(space, provider.url, { profileDir, profileAlloc }));
      if (profileDir) return profile(space, f, provider);
      if (urgentOnly) return urgentOnlyRun(f, provider.ledger);
      if (latencyOnly) return latencyOnlyRun(space, f, provider);
      return benchmark(space, f, provider);
    })().then(() => 0);
    return await Promise.race([work, timedOut, interrupted]);
  } catch (err) {
    if (signalled) return 130; // the phase in progress failed because its processes were stopped
    log(`FAILED: ${(err as Error).stack ?? String(err)}`);
    for (const c of runningChildren()) log(`${c.name} output (tail):\n${c.output().slice(-1500)}`);
    return 1;
  } finally {
    clearTimeout(timer);
    await cleanup();
    log('cleaned up');
  }
}

process.exitCode = await main();
// Anything still pending (an abandoned phase after a timeout) must not keep the process alive.
process.exit(process.exitCode);
