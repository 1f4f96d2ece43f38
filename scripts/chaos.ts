/**
 * `npm run chaos`: every scenario of scripts/chaos/scenarios.ts against a fleet under steady load,
 * on PRIVATE infrastructure started here (a RabbitMQ node, then a 3-node cluster, and a Redis, on
 * free ports, in a temporary folder; a Redis Sentinel set too when a scenario has `sentinel: true`)
 * and torn down at the end, also on failure or Ctrl-C. Prints
 * the audit table, writes it as the latest run of docs/RELIABILITY.md (full runs only) and exits 1 if any accepted
 * message was lost (or a scenario could not run).
 *
 *   npm run chaos -- --only sender,redis --rate 40 --users 100 --duration 20
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { freePort } from './lib/ports.js';
import { Teardown } from './lib/teardown.js';
import { privateInfraAvailable } from './lib/tools.js';
import { allocateNodes, startCluster, type RabbitNode } from './lib/private-rabbit.js';
import { snapshotServices } from './lib/processes.js';
import { PrivateRedis } from './lib/private-redis.js';
import { PrivateSentinelSet } from './lib/private-sentinel.js';
import { consoleTable, failed, latestRunBlock, notesBlock, type RunMeta } from './chaos/report.js';
import { writeBlock } from './doc-block.js';
import { runScenario, type RunOptions, type ScenarioResult } from './chaos/run.js';
import { SCENARIOS, type Scenario } from './chaos/scenarios.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const opts = new Command('chaos')
  .option('--only <names>', 'comma-separated parts of scenario names, e.g. "sender,redis"')
  .option('--rate <n>', 'messages per second of the steady load', '40')
  .option('--users <n>', 'users the load is spread over', '100')
  .option('--duration <s>', 'seconds of load per scenario at least (it goes on 15 s past the fault)', '20')
  .option('--drain <s>', 'seconds to wait at most after the load for every message to arrive', '600')
  .option('--stall <s>', '…giving up earlier after this many seconds without progress', '150')
  .option('--no-doc', 'do not write the latest run into docs/RELIABILITY.md')
  .option('--render <results.json>', "only write docs/RELIABILITY.md's latest run again from a run's saved results (in its log folder)")
  .parse()
  .opts<{ only?: string; rate: string; users: string; duration: string; drain: string; stall: string; doc: boolean; render?: string }>();

const log = (line: string) => console.error(line);
const docPath = path.join(root, 'docs', 'RELIABILITY.md');
/** Only the latest-run block of docs/RELIABILITY.md is the run's; the rest of the page is prose. */
const writeDoc = (results: ScenarioResult[], meta: RunMeta) => writeBlock(docPath, 'chaos:latest-run', latestRunBlock(results, meta));
if (opts.render) {
  const saved = JSON.parse(await readFile(opts.render, 'utf8')) as { results: ScenarioResult[]; meta: RunMeta };
  await writeDoc(saved.results, saved.meta);
  log(`wrote ${docPath} from ${opts.render}`);
  process.exit(0);
}
const avail = privateInfraAvailable();
if (!avail.ok) {
  log(`chaos: ${avail.why}`);
  process.exit(1);
}
const wanted = opts.only
  ?.split(',')
  .map((x) => x.trim().toLowerCase())
  .filter(Boolean);
const scenarios = SCENARIOS.filter((sc) => !wanted || wanted.some((w) => sc.name.toLowerCase().includes(w)));
if (scenarios.length === 0) {
  log(`chaos: no scenario matches "${opts.only}"; there are: ${SCENARIOS.map((sc) => sc.name).join(', ')}`);
  process.exit(1);
}

const began = Date.now();
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const logDir = path.join(os.tmpdir(), 'postmaster-chaos-logs', stamp);
const base = await mkdtemp(path.join(os.tmpdir(), 'postmaster-chaos-'));
const teardown = new Teardown();
teardown.add(`remove ${base}`, () => rm(base, { recursive: true, force: true }));
teardown.onSignals(log);
const tag = randomBytes(2).toString('hex');
const runOpts: RunOptions = {
  ratePerS: Number(opts.rate),
  users: Number(opts.users),
  loadMs: Number(opts.duration) * 1000,
  faultAtMs: 6000,
  afterFaultMs: 15_000,
  drainMs: Number(opts.drain) * 1000,
  stallMs: Number(opts.stall) * 1000,
  logDir,
  log,
};
const results: ScenarioResult[] = [];
let rabbitVersion = 'RabbitMQ ?';

async function phase(list: Scenario[], size: number): Promise<void> {
  if (list.length === 0) return;
  const nodes: RabbitNode[] = await allocateNodes(base, `pmchaos-${tag}-${size}n`, size);
  teardown.add(`stop ${nodes.map((n) => n.node).join(', ')}`, () => Promise.all(nodes.map((n) => n.destroy())));
  const t0 = Date.now();
  log(
    `starting ${size === 1 ? 'a private RabbitMQ node' : `a private ${size}-node RabbitMQ cluster`} (${nodes.map((n) => `${n.node} :${n.ports.amqp}`).join(', ')})…`,
  );
  if (size === 1) await nodes[0].start();
  else await startCluster(nodes);
  rabbitVersion = `RabbitMQ ${(await nodes[0].ctl(['version'])).stdout.trim()}`;
  log(`  up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  for (const sc of list) {
    log(`\n[${results.length + 1}/${scenarios.length}] ${sc.name}`);
    const r = await runScenario(sc, SCENARIOS.indexOf(sc), { nodes, redis, ...(sc.sentinel && sentinel ? { sentinel } : {}) }, runOpts);
    results.push(r);
    log(
      `  → ${r.audit ? `accepted ${r.audit.accepted}, delivered ${r.audit.delivered}, dead ${r.audit.deadLettered}, lost ${r.audit.lost}, duplicated ${r.audit.duplicated}, misordered ${r.audit.misordered}` : `error: ${r.error}`} (${(r.tookMs / 1000).toFixed(0)} s)`,
    );
  }
  for (const n of nodes) await copyFile(path.join(n.dir, 'log', `${n.node}.log`), path.join(logDir, `${n.node}.log`)).catch(() => undefined);
  await Promise.all(nodes.map((n) => n.destroy()));
}

const redis = new PrivateRedis(base, await freePort());
/** Started only when a scenario runs the fleet on Redis Sentinel. */
let sentinel: PrivateSentinelSet | null = null;
let code = 1;
try {
  await snapshotServices(path.join(base, 'app'));
  await redis.start();
  teardown.add(`stop Redis :${redis.port}`, () => redis.destroy());
  log(`private Redis on :${redis.port}; services' logs (warn and above) go to ${logDir}`);
  if (scenarios.some((sc) => sc.sentinel)) {
    const set = (await PrivateSentinelSet.create(base)).stopOnExit();
    teardown.add('stop the Redis Sentinel set', () => set.stop());
    await set.start();
    sentinel = set;
    log(`private Redis Sentinel set: servers :${set.redisPorts.join(', :')}, Sentinels ${set.sentinels}`);
  }
  await phase(
    scenarios.filter((sc) => !sc.cluster),
    1,
  );
  await phase(
    scenarios.filter((sc) => sc.cluster),
    3,
  );
  console.log(consoleTable(results));
  console.log(notesBlock(results));
  const tookMs = Date.now() - began;
  console.log(`chaos run took ${(tookMs / 60_000).toFixed(1)} min`);
  const meta: RunMeta = {
    command: 'npm run chaos',
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    tookMs,
    machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GB, Node ${process.version}`,
    rabbitmq: rabbitVersion,
    settings:
      `Load: ${runOpts.ratePerS} messages/s over ${runOpts.users} users (each user sends its next message only after the previous ` +
      `one was accepted) from ${runOpts.faultAtMs / 1000} s before the fault until ${runOpts.afterFaultMs / 1000} s after its end (at least ${runOpts.loadMs / 1000} s). ` +
      'Fleet per scenario (fresh vhost and Redis prefix): 1 ingress, 2 dispatchers, 2 senders and 1 dlq-replayer as child processes, ' +
      'the provider simulator in the chaos process, posting `sent` and `delivered` status webhooks to the ingress; defaults otherwise ' +
      '(WHATSAPP_THROUGHPUT_PER_SECOND=80, retry tiers 1s,5s,30s,2m,10m, LEASE_TTL_MS=5000) except SHARDS=8 and the pair rate ' +
      'limit off. A process that exits unasked is restarted after 1, 2, 4… (at most 10) s, as a Deployment would. After the load ' +
      `the run waits until every accepted message is delivered or dead-lettered (at most ${runOpts.drainMs / 1000} s, or ${runOpts.stallMs / 1000} s without progress).`,
  };
  await mkdir(logDir, { recursive: true });
  await writeFile(path.join(logDir, 'results.json'), JSON.stringify({ results, meta }, null, 2));
  if (opts.doc && !wanted) {
    await writeDoc(results, meta);
    log(`wrote ${docPath} (results also in ${path.join(logDir, 'results.json')})`);
  }
  code = failed(results) ? 1 : 0;
  if (code) log('chaos: FAILED — an accepted message was lost or a scenario could not run (see above)');
} catch (err) {
  log(`chaos: ${(err as Error).stack ?? String(err)}`);
} finally {
  await teardown.run(log);
}
process.exit(code);
