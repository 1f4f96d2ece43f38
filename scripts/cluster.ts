/**
 * `npm run cluster -- start|stop|status`: a private 3-node RabbitMQ cluster on this machine
 * (pmcluster-1..3@localhost, AMQP ports 5701-5703, management 15701-15703, Prometheus
 * 15711-15713; CLUSTER_BASE_PORT moves them), with the three plugins, its data under
 * $TMPDIR/postmaster-cluster. The machine's own RabbitMQ is left alone.
 *
 *   export AMQP_URL=$(npm run --silent cluster -- start)   # the comma-separated URL on stdout
 *   npm run cluster -- stop                                  # stops the nodes and removes their data
 *
 * `npm run cluster -- redis start|stop|status`: a private Redis Sentinel set (servers on ports
 * 6401-6403, Sentinels on 26401-26403; SENTINEL_BASE_PORT moves them), data under
 * $TMPDIR/postmaster-sentinel; it prints `REDIS_SENTINELS=… REDIS_URL=…` for the fleet.
 *
 *   export $(npm run --silent cluster -- redis start)
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { portOpen } from './lib/ports.js';
import { Teardown } from './lib/teardown.js';
import { onPath, privateInfraAvailable } from './lib/tools.js';
import { clusterUrl, RabbitNode, startCluster } from './lib/private-rabbit.js';
import { PrivateSentinelSet } from './lib/private-sentinel.js';

const base = path.join(os.tmpdir(), 'postmaster-cluster');
const basePort = Number(process.env.CLUSTER_BASE_PORT ?? 5701);
const nodes = [0, 1, 2].map(
  (i) =>
    new RabbitNode(base, `pmcluster-${i + 1}`, {
      amqp: basePort + i,
      dist: basePort + 20_000 + i,
      mgmt: basePort + 10_000 + i,
      prom: basePort + 10_010 + i,
    }),
);
const log = (line: string) => console.error(line);

async function status(): Promise<boolean[]> {
  return Promise.all(nodes.map((n) => n.alive()));
}

async function start(): Promise<void> {
  const alive = await status();
  if (alive.every(Boolean)) {
    log(`cluster already running (${nodes.map((n) => n.node).join(', ')})`);
    console.log(clusterUrl(nodes));
    return;
  }
  if (alive.some(Boolean) || existsSync(base)) {
    log(`a partial cluster is left in ${base}; run "npm run cluster -- stop" first`);
    process.exit(1);
  }
  const busy = [];
  for (const n of nodes) for (const p of Object.values(n.ports)) if (await portOpen(p)) busy.push(p);
  if (busy.length) {
    log(`ports ${busy.join(', ')} are taken; set CLUSTER_BASE_PORT to move the cluster`);
    process.exit(1);
  }
  const teardown = new Teardown();
  teardown.add('remove the cluster', () => Promise.all(nodes.map((n) => n.destroy())).then(() => rm(base, { recursive: true, force: true })));
  teardown.onSignals(log);
  log(`starting ${nodes.map((n) => `${n.node} (amqp :${n.ports.amqp}, management :${n.ports.mgmt})`).join(', ')}…`);
  const t0 = Date.now();
  try {
    await startCluster(nodes);
  } catch (err) {
    log(`cluster: ${(err as Error).message}`);
    await teardown.run(log);
    process.exit(1);
  }
  log(`cluster up in ${((Date.now() - t0) / 1000).toFixed(0)} s; management UI ${nodes[0].mgmtUrl.replace('guest:guest@', '')} (guest/guest)`);
  log(`use it: AMQP_URL=<the line below> RABBITMQ_MANAGEMENT_URL=${nodes[0].mgmtUrl} REDIS_URL=… npm start`);
  console.log(clusterUrl(nodes));
}

async function stop(): Promise<void> {
  await Promise.all(nodes.map((n) => n.destroy()));
  await rm(base, { recursive: true, force: true });
  log('cluster stopped, data removed');
}

/** The Sentinel set's variables, on stdout. */
async function printSentinelEnv(set: PrivateSentinelSet): Promise<void> {
  const p = await set.primary();
  log(`primary 127.0.0.1:${p.port}; Sentinels ${set.sentinels} (master group ${set.name})`);
  console.log(`REDIS_SENTINELS=${set.sentinels} REDIS_SENTINEL_NAME=${set.name} REDIS_URL=${set.redisUrl}`);
}

async function redisCommand(cmd: string | undefined): Promise<number> {
  const sbase = Number(process.env.SENTINEL_BASE_PORT ?? 6401);
  const offsets = [0, 1, 2];
  const dir = path.join(os.tmpdir(), 'postmaster-sentinel');
  const set = await PrivateSentinelSet.create(dir, {
    redis: offsets.map((i) => sbase + i),
    sentinels: offsets.map((i) => sbase + 20_000 + i),
  });
  const alive = Object.values(await set.alive());
  switch (cmd) {
    case 'start':
      if (alive.every(Boolean)) {
        log('Sentinel set already running');
        await printSentinelEnv(set);
        return 0;
      }
      if (alive.some(Boolean) || existsSync(set.dir)) {
        log(`a partial Sentinel set is left in ${set.dir}, or ports are taken; run "npm run cluster -- redis stop" first, or set SENTINEL_BASE_PORT`);
        return 1;
      }
      try {
        await set.start();
      } catch (err) {
        log(`redis: ${(err as Error).message}`);
        await set.stop();
        return 1;
      }
      await printSentinelEnv(set);
      return 0;
    case 'stop':
      await set.stop();
      await rm(dir, { recursive: true, force: true });
      log('Sentinel set stopped, data removed');
      return 0;
    case 'status':
      log([...set.redisPorts, ...set.sentinelPorts].map((p, i) => `:${p} ${alive[i] ? 'running' : 'stopped'}`).join(', '));
      if (!alive.every(Boolean)) return 1;
      await printSentinelEnv(set);
      return 0;
    default:
      log('usage: npm run cluster -- redis start | stop | status');
      return 2;
  }
}

if (process.argv[2] === 'redis') {
  if (!onPath('redis-server') || !onPath('redis-cli')) {
    log('cluster: redis-server / redis-cli are not on PATH');
    process.exit(1);
  }
  process.exit(await redisCommand(process.argv[3]));
}
const avail = privateInfraAvailable();
if (!avail.ok && avail.why.startsWith('rabbitmq')) {
  log(`cluster: ${avail.why}`);
  process.exit(1);
}
switch (process.argv[2]) {
  case 'start':
    await start();
    break;
  case 'stop':
    await stop();
    break;
  case 'status': {
    const alive = await status();
    nodes.forEach((n, i) => log(`${n.node}: ${alive[i] ? 'running' : 'stopped'}`));
    if (alive.every(Boolean)) console.log(clusterUrl(nodes));
    process.exit(alive.every(Boolean) ? 0 : 1);
    break;
  }
  default:
    log('usage: npm run cluster -- start | stop | status   (or: redis start | stop | status)');
    process.exit(2);
}
